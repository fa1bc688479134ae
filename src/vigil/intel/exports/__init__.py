"""Exports for operations: blocklists and rule files for firewalls, DNS and IDS.

Pure code: indicators (:class:`vigil.intel.types.IndicatorView`) in, file content out.
"""

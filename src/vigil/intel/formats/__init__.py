"""Feed formats, read and written: STIX 2.1, MISP (events and feeds), CSV and plain lists.

Pure code: bytes in, :class:`vigil.intel.types.Parsed` out (and back to bytes for exports).
"""

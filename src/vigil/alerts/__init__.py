"""Alerts and incidents: detections as alerts (dedup, status, disposition) grouped into incidents."""

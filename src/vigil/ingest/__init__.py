"""The ingest context."""

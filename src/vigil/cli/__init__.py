"""The cli context."""

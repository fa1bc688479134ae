"""The store context."""

"""The api context."""

"""Vigil: one open-source SecOps platform for security and operations teams."""

__all__ = ["__version__"]

__version__ = "0.1.0"

"""Moat: container security from image to runtime."""

__version__ = "0.1.0"

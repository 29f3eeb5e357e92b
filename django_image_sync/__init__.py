"""Image uploads for Django with deduplication and background resizing."""

__version__ = "0.1.0"

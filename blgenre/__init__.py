"""blgenre: genre classification of 19th-century British Library books."""

__version__ = "0.1.0"

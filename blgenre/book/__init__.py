"""Book tooling: gluing numbers into prose, the Sphinx extension, notebook pairing, build checks.

``from blgenre.book import glue`` is what chapters use (see :mod:`~blgenre.book.prose`).
"""

from blgenre.book.prose import glue, glue_metrics, listing, plain  # noqa: F401

"""Part III of the book: scoring models on the test split and comparing them.

:mod:`~blgenre.evaluation.evaluate` (one harness every model chapter calls, and the comparisons
the chapters share: ``versus``, ``language_table``), :mod:`~blgenre.evaluation.paired` (McNemar
and the paired bootstrap), :mod:`~blgenre.evaluation.compare` (calibration, thresholds, where the
models go wrong) and :mod:`~blgenre.evaluation.plots` (the book's figures).
"""

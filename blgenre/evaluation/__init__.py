"""Part III of the book: scoring models on the test split and comparing them.

:mod:`~blgenre.evaluation.evaluate` (one harness every model chapter calls),
:mod:`~blgenre.evaluation.compare` (paired tests, calibration, thresholds) and
:mod:`~blgenre.evaluation.plots` (the book's figures).
"""

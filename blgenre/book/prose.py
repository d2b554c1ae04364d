"""Helpers for chapters: gluing values into the prose."""

from __future__ import annotations

import numpy as np


def plain(value):
    """NumPy scalars as Python numbers, so that glued text formats (``{glue:text}`k:.3f` ``) work."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value, display: bool = False):
    """:func:`myst_nb.glue` with NumPy scalars converted and, by default, nothing displayed."""
    from myst_nb import glue as _glue

    return _glue(name, plain(value), display=display)


def glue_metrics(prefix: str, metrics: dict) -> None:
    """Glue a metrics dict's headline numbers under ``<prefix>_...`` keys, the same in every chapter.

    Keys: ``<prefix>_test_f1`` (with ``_lo`` / ``_hi`` for its interval), ``<prefix>_test_acc`` and, per
    class, ``<prefix>_f1_fiction``, ``<prefix>_precision_fiction``,
    ``<prefix>_recall_non_fiction`` and so on.
    """
    glue(f"{prefix}_test_f1", metrics["macro_f1"])
    glue(f"{prefix}_test_f1_lo", metrics["macro_f1_ci"][0])
    glue(f"{prefix}_test_f1_hi", metrics["macro_f1_ci"][1])
    glue(f"{prefix}_test_acc", metrics["accuracy"])
    for label, scores in metrics["per_class"].items():
        key = label.lower().replace("-", "_")
        for measure in ("f1", "precision", "recall"):
            glue(f"{prefix}_{measure}_{key}", scores[measure])

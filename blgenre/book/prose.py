"""Helpers for chapters: gluing values into the prose, and writing lists in words.

Every chapter glues its numbers with :func:`glue`; the model chapters glue a model's test
metrics with :func:`glue_metrics` (one set of key names for every model), and chapters that
name several models or groups in a sentence use :func:`listing`.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def label_key(label: str) -> str:
    """A class label as it appears in glue keys: ``Non-fiction`` -> ``non_fiction``."""
    return label.lower().replace("-", "_")


def glue_metrics(prefix: str, metrics: dict, with_n: bool = False) -> dict:
    """Glue a model's test metrics (``artifacts/metrics/<model>.json``) under ``<prefix>_...``.

    Keys: ``<prefix>_test_f1``, ``_test_f1_lo``, ``_test_f1_hi`` (its 95% bootstrap interval),
    ``_test_acc``, and per class ``_f1_<label>``, ``_precision_<label>``, ``_recall_<label>``
    (``<label>`` as :func:`label_key` writes it, e.g. ``baseline_f1_fiction``,
    ``transformer_recall_non_fiction``); with ``with_n``, also ``<prefix>_n_test``. Returns the
    glued ``{key: value}``.
    """
    values = {
        f"{prefix}_test_f1": metrics["macro_f1"],
        f"{prefix}_test_f1_lo": metrics["macro_f1_ci"][0],
        f"{prefix}_test_f1_hi": metrics["macro_f1_ci"][1],
        f"{prefix}_test_acc": metrics["accuracy"],
    }
    if with_n:
        values[f"{prefix}_n_test"] = metrics["n"]
    for label, scores in metrics["per_class"].items():
        for measure in ("f1", "precision", "recall"):
            values[f"{prefix}_{measure}_{label_key(label)}"] = scores[measure]
    for key, value in values.items():
        glue(key, value)
    return {key: plain(value) for key, value in values.items()}


def listing(items: Iterable, word: str | None = None, plural: str | None = None) -> str:
    """``a``, ``a and b``, ``a, b and c``; with ``word``, followed by it, pluralised when needed.

    ``listing(["fastai"], "model")`` is "fastai model", ``listing(["fastai", "transformer"],
    "model")`` "fastai and transformer models" (``plural`` overrides the added "s"); an empty
    list is "none", or "no models".
    """
    items = [str(i) for i in items]
    many = plural or (f"{word}s" if word else None)
    if not items:
        return f"no {many}" if word else "none"
    text = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    if word:
        text += " " + (word if len(items) == 1 else many)
    return text

"""Chapter helpers: gluing a model's metrics under one set of keys, and lists in words."""

from __future__ import annotations

import numpy as np
import pytest

from blgenre.book import prose

METRICS = {
    "n": 261, "macro_f1": np.float64(0.81), "macro_f1_ci": [0.75, 0.87], "accuracy": 0.88,
    "per_class": {"Fiction": {"f1": 0.7, "precision": 0.92, "recall": 0.56, "support": 66},
                  "Non-fiction": {"f1": 0.92, "precision": 0.87, "recall": 0.98, "support": 195}},
}


@pytest.fixture
def glued(monkeypatch):
    calls = {}
    monkeypatch.setattr(prose, "glue", lambda key, value, display=False: calls.__setitem__(key, value))
    return calls


def test_glue_metrics_uses_the_chapters_keys(glued):
    out = prose.glue_metrics("transformer", METRICS)
    assert glued == out
    assert out == {
        "transformer_test_f1": 0.81, "transformer_test_f1_lo": 0.75, "transformer_test_f1_hi": 0.87,
        "transformer_test_acc": 0.88,
        "transformer_f1_fiction": 0.7, "transformer_precision_fiction": 0.92,
        "transformer_recall_fiction": 0.56,
        "transformer_f1_non_fiction": 0.92, "transformer_precision_non_fiction": 0.87,
        "transformer_recall_non_fiction": 0.98,
    }
    assert type(out["transformer_test_f1"]) is float  # NumPy scalars become plain numbers
    assert prose.glue_metrics("baseline", METRICS, with_n=True)["baseline_n_test"] == 261


@pytest.mark.parametrize("items, word, expect", [
    (["fastai"], None, "fastai"),
    (["baseline", "fastai"], None, "baseline and fastai"),
    (("baseline", "fastai", "transformer"), None, "baseline, fastai and transformer"),
    ([], None, "none"),
    (["fastai"], "model", "fastai model"),
    (["fastai", "transformer"], "model", "fastai and transformer models"),
    ([], "model", "no models"),
    ([1850, 1860], "decade", "1850 and 1860 decades"),
])
def test_listing(items, word, expect):
    assert prose.listing(items, word) == expect


def test_listing_irregular_plural():
    assert prose.listing(["a", "b"], "analysis", plural="analyses") == "a and b analyses"

"""The evaluation harness against hand-computed values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blgenre.evaluation import evaluate

F, N = "Fiction", "Non-fiction"
# 4 fiction (3 found), 6 non-fiction (4 found, 2 called fiction)
TRUE = [F, F, F, F, N, N, N, N, N, N]
PRED = [F, F, F, N, F, F, N, N, N, N]


def test_known_confusion_matrix():
    m = evaluate.classification_metrics(TRUE, PRED)
    assert m["confusion_matrix"]["matrix"] == [[3, 1], [2, 4]]
    assert m["accuracy"] == pytest.approx(0.7)
    assert m["per_class"][F]["precision"] == pytest.approx(3 / 5)
    assert m["per_class"][F]["recall"] == pytest.approx(3 / 4)
    assert m["per_class"][F]["f1"] == pytest.approx(2 / 3)
    assert m["per_class"][N]["f1"] == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.727272727) / 2)


def test_bootstrap_ci_brackets_estimate_and_is_seeded():
    lo, hi = evaluate.bootstrap_ci(TRUE * 10, PRED * 10, n=300)
    assert lo < evaluate.macro_f1(TRUE, PRED) < hi
    assert (lo, hi) == evaluate.bootstrap_ci(TRUE * 10, PRED * 10, n=300)
    perfect = evaluate.bootstrap_ci(TRUE, TRUE, n=100)
    assert perfect == (1.0, 1.0)


def test_labels_from_proba_threshold():
    assert list(evaluate.labels_from_proba([0.5, 0.49, 0.9])) == [F, N, F]


def test_evaluate_writes_metrics_and_predictions(tmp_artifacts):
    test = pd.DataFrame({
        "record_id": [str(i) for i in range(10)], "title": [f"t{i}" for i in range(10)],
        "label": TRUE, "language": ["English"] * 5 + ["Dutch"] * 5,
        "decade": ["1850s"] * 10,
    })
    prob = np.where(np.array(PRED) == F, 0.8, 0.2)
    result = evaluate.evaluate("toy", test, prob)
    saved = json.loads((tmp_artifacts / "metrics" / "toy.json").read_text())
    assert saved["macro_f1"] == pytest.approx(result["macro_f1"])
    assert saved["by_language"]["English"]["n"] == 5
    assert saved["by_language"]["Dutch"]["macro_f1"] is None  # all Dutch rows are non-fiction
    assert saved["by_language"]["Dutch"]["too_small"] is True
    preds = pd.read_csv(tmp_artifacts / "predictions" / "toy.csv")
    assert list(preds["pred"]) == PRED
    table = evaluate.summary_table(["toy", "absent"])
    assert list(table.index) == ["toy"]
    with pytest.raises(ValueError, match="9 probabilities for 10"):
        evaluate.evaluate("toy", test, prob[:9])

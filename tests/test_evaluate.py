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


def test_fast_macro_f1_equals_scikit_learn():
    rng = np.random.default_rng(3)
    y = np.where(rng.random(60) < 0.3, F, N)
    p = np.where(rng.random(60) < 0.3, F, N)
    idx = rng.integers(0, 60, size=(300, 60))
    rows = evaluate.macro_f1_rows(y[idx], p[idx])
    assert rows.tolist() == [evaluate.macro_f1(y[i], p[i]) for i in idx]
    # one class neither true nor predicted: its F1 counts as 0, as in scikit-learn
    assert evaluate.macro_f1_rows(np.array([[N, N]]), np.array([[N, N]])).tolist() == [0.5]


def test_one_threshold_and_one_list_of_models(monkeypatch):
    from blgenre.models import registry

    assert list(evaluate.labels_from_proba([evaluate.FICTION_THRESHOLD])) == [F]
    assert tuple(evaluate.MODELS) == registry.names()
    monkeypatch.setattr(registry, "KINDS", {**registry.KINDS, "extra": registry.KINDS["baseline"]})
    assert evaluate.MODELS[-1] == "extra" and "extra" in evaluate.MODELS  # a live view


def write_two_models(n_right_only_a: int = 12, n: int = 40) -> pd.DataFrame:
    """Model a right on every test book; model b wrong on the first ``n_right_only_a`` fiction."""
    test = pd.DataFrame({
        "record_id": [f"{i:09d}" for i in range(n)],
        "title": ["NA" if i == 1 else f"Title {i}" for i in range(n)],
        "label": [F if i % 2 == 0 else N for i in range(n)],
        "language": ["English"] * (n - 6) + ["German"] * 3 + ["Welsh"] * 3,
        "decade": ["1850s"] * n,
    })
    test.loc[test["language"] == "Welsh", "label"] = N
    good = np.where(test["label"] == F, 0.9, 0.1)
    worse = good.copy()
    fiction = np.flatnonzero(test["label"] == F)[:n_right_only_a]
    worse[fiction] = 0.2
    evaluate.evaluate("a", test, good)
    evaluate.evaluate("b", test, worse)
    return test


def test_read_predictions_keeps_ids_and_titles_as_text(tmp_artifacts):
    from blgenre.errors import ModelError
    from blgenre.evaluation import compare

    write_two_models()
    preds = evaluate.read_predictions("a")
    assert preds["record_id"].iloc[0] == "000000000" and preds["title"].iloc[1] == "NA"
    with pytest.raises(ModelError, match="no predictions for 'absent'"):
        evaluate.read_predictions("absent")
    # one load_metrics with one behaviour, wherever it is imported from
    assert compare.load_metrics is evaluate.load_metrics
    assert evaluate.load_metrics("absent") is None
    assert compare.train_seconds("absent") is None
    with pytest.raises(ModelError, match="no metrics for 'absent'"):
        evaluate.required_metrics("absent")


def test_versus_hand_computed(tmp_artifacts):
    write_two_models()
    r = evaluate.versus("a", "b")
    # 19 fiction books (one Welsh book relabelled), b misses 12: Fiction F1 = 2*7/(19+7),
    # Non-fiction F1 = 2*21/(21+33)
    b_f1 = (14 / 26 + 42 / 54) / 2
    assert (r["a_f1"], r["b_f1"]) == (1.0, pytest.approx(b_f1))
    assert r["diff"] == pytest.approx(1 - b_f1) and r["word"] == "above"
    assert (r["only_a_right"], r["only_b_right"], r["n"]) == (12, 0, 40)
    assert r["p_value"] == pytest.approx(2 * 0.5 ** 12)
    assert 0 < r["lo"] <= r["diff"] <= r["hi"] and r["verdict"] == "better"
    assert r["sentence"].startswith(f"On the same 40 test books the a model's macro-F1 is "
                                    f"{1 - b_f1:.3f} above the b model's")
    assert r["sentence"].endswith("so a is better on this measure.") and "\n" not in r["sentence"]
    assert "a alone on 12" in r["details"]
    back = evaluate.versus("b", "a")
    assert back["word"] == "below" and back["verdict"] == "worse"
    assert (back["lo"], back["hi"]) == (pytest.approx(-r["hi"]), pytest.approx(-r["lo"]))
    test = write_two_models()
    evaluate.evaluate("c", test, np.where(test["label"] == F, 0.8, 0.3))  # a's labels again
    same = evaluate.versus("a", "c")
    assert same["verdict"] == "undecided" and "equals" in same["sentence"]
    assert "cannot tell" in same["sentence"] and same["ci_overlap"]
    with pytest.raises(ValueError, match="two different models"):
        evaluate.versus("a", "a")


def test_language_table_side_by_side(tmp_artifacts):
    write_two_models()
    t = evaluate.language_table(["a", "b"])
    assert list(t.columns) == ["n", "a macro-F1", "b macro-F1", "too small"]
    assert list(t.index) == ["English", "German", "Welsh"]
    assert t["too small"].tolist() == [False, True, True]
    assert t.loc["English", "a macro-F1"] == 1.0 and np.isnan(t.loc["Welsh", "a macro-F1"])
    assert evaluate.language_table(["a"], min_group=3)["too small"].tolist() == [False] * 3
    with pytest.raises(ValueError):
        evaluate.language_table([])

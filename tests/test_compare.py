"""Model comparison: paired tests, calibration and coverage against hand-computed values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blgenre.evaluation import compare, evaluate

F, N = "Fiction", "Non-fiction"


def preds(only_a: int, only_b: int, both: int = 4, neither: int = 2):
    """Labels and two models' predictions with a chosen number of discordant titles."""
    y = [F] * (only_a + only_b + both + neither)
    a = [F] * only_a + [N] * only_b + [F] * both + [N] * neither
    b = [N] * only_a + [F] * only_b + [F] * both + [N] * neither
    return y, a, b


@pytest.mark.parametrize("only_a, only_b, p", [
    (1, 5, 2 * (1 + 6) / 64),   # 2 * P(X <= 1), X ~ Binomial(6, 1/2)
    (0, 6, 2 * 1 / 64),         # 2 * P(X = 0)
    (5, 1, 2 * (1 + 6) / 64),   # symmetric
    (3, 3, 1.0),                # 2 * P(X <= 3) = 2 * 42/64 > 1 -> capped at 1
    (0, 0, 1.0),                # no discordant titles
])
def test_mcnemar_exact_hand_computed(only_a, only_b, p):
    y, a, b = preds(only_a, only_b)
    r = compare.mcnemar_exact(y, a, b)
    assert (r["only_a_right"], r["only_b_right"]) == (only_a, only_b)
    assert r["p_value"] == pytest.approx(p)


def test_ece_hand_computed():
    # bin [0.50, 0.55): two titles, mean confidence 0.52, one right -> gap 0.02
    # bin [0.95, 1.00]: two titles, mean confidence 0.97, both right -> gap 0.03
    conf = [0.52, 0.52, 0.97, 0.97]
    correct = [True, False, True, True]
    assert compare.expected_calibration_error(correct, conf) == pytest.approx(0.5 * 0.02 + 0.5 * 0.03)
    table = compare.reliability(correct, conf)
    assert table["n"].tolist() == [2, 0, 0, 0, 0, 0, 0, 0, 0, 2]
    # confidence 1.0 falls in the last bin; perfect predictions are perfectly calibrated
    assert compare.expected_calibration_error([True] * 3, [1.0] * 3) == 0.0
    # always 60% confident and right 60% of the time: calibrated
    assert compare.expected_calibration_error([1, 1, 1, 0, 0], [0.6] * 5) == pytest.approx(0.0)
    # always 90% confident and right half of the time: ECE 0.4
    assert compare.expected_calibration_error([1, 0], [0.9, 0.9]) == pytest.approx(0.4)


def test_confidence_is_probability_of_predicted_label():
    assert compare.confidence([0.9, 0.1, 0.5, 0.3]).tolist() == pytest.approx([0.9, 0.9, 0.5, 0.7])


CONF = [0.99, 0.95, 0.90, 0.80, 0.70, 0.60]
CORRECT = [True, True, False, True, True, False]


def test_coverage_curve_hand_computed():
    c = compare.coverage_curve(CORRECT, CONF)
    assert c["n_labelled"].tolist() == [1, 2, 3, 4, 5, 6]
    assert c["precision"].tolist() == pytest.approx([1, 1, 2 / 3, 3 / 4, 4 / 5, 4 / 6])


def test_coverage_curve_ties_are_labelled_together():
    c = compare.coverage_curve([True, False, True], [0.9, 0.9, 0.8])
    assert c["threshold"].tolist() == [0.9, 0.8]
    assert c["n_labelled"].tolist() == [2, 3]
    assert c["precision"].tolist() == pytest.approx([0.5, 2 / 3])


def test_coverage_at_precision_hand_computed():
    r = compare.coverage_at_precision(CORRECT, CONF, 0.95)
    assert (r["threshold"], r["n_labelled"], r["errors"]) == (0.95, 2, 0)
    assert r["coverage"] == pytest.approx(2 / 6)
    # one-sided 95% Clopper-Pearson lower bound for 2 of 2: 0.05 ** (1/2)
    assert r["precision_lo"] == pytest.approx(0.05 ** 0.5)
    # precision is not monotone in the threshold: 0.75 is met at 0.8 (4 titles) and at 0.7
    # (5 titles); the larger coverage wins
    r = compare.coverage_at_precision(CORRECT, CONF, 0.75)
    assert (r["threshold"], r["n_labelled"], r["errors"]) == (0.70, 5, 1)
    r = compare.coverage_at_precision([False, True], [0.9, 0.8], 0.99)
    assert r["threshold"] is None and r["n_labelled"] == 0


def test_paired_bootstrap_seeded_and_sensible():
    y, a, b = preds(2, 6, both=20, neither=4)
    y = y + [N] * 20
    a = a + [N] * 20
    b = b + [N] * 20
    r1 = compare.paired_bootstrap(y, a, b, n=300, seed=1)
    assert r1 == compare.paired_bootstrap(y, a, b, n=300, seed=1)
    assert r1 != compare.paired_bootstrap(y, a, b, n=300, seed=2)
    assert r1["diff"] == pytest.approx(evaluate.macro_f1(y, b) - evaluate.macro_f1(y, a))
    assert r1["lo"] <= r1["diff"] <= r1["hi"]
    same = compare.paired_bootstrap(y, a, a, n=50)
    assert (same["diff"], same["lo"], same["hi"]) == (0.0, 0.0, 0.0)


def test_describe_pair_words():
    row = {"A": "x", "B": "y", "only A right": 1, "only B right": 9, "McNemar p": 0.02,
           "macro-F1 B − A": 0.05, "CI low": 0.01, "CI high": 0.09}
    text = compare.describe_pair(row)
    assert "disagree on 10 test titles" in text and "y is better" in text
    text = compare.describe_pair({**row, "McNemar p": 0.4, "CI low": -0.02})
    assert "cannot tell" in text and "could easily happen" in text


def test_word_bins():
    assert list(compare.word_bin([2, 5, 6, 10, 11, 20, 21])) == [
        "1–5 words", "1–5 words", "6–10 words", "6–10 words", "11–20 words", "11–20 words",
        "21+ words"]


def _test_frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "record_id": [f"{i:09d}" for i in range(n)],
        "title": [f"A tale of {i} [A novel.]" if i % 4 == 0 else f"History of {i}" for i in range(n)],
        "label": [F if i % 4 == 0 else N for i in range(n)],
        "language": ["English"] * (n - 5) + ["German"] * 5,
        "decade": ["1850s"] * n,
        "title_chars": [20] * n,
    }).assign(_noise=rng.random(n))


def test_available_aligned_and_ensemble(tmp_artifacts):
    test = _test_frame().drop(columns="_noise")
    good = np.where(test["label"] == F, 0.9, 0.2)
    evaluate.evaluate("baseline", test, good)
    assert compare.available_models() == ["baseline"]
    assert compare.missing_models() == ["fastai", "transformer"]
    flipped = good.copy()
    flipped[:3] = 1 - flipped[:3]
    # another model, its rows in another order: aligned by record_id
    order = np.arange(len(test))[::-1]
    evaluate.evaluate("fastai", test.iloc[order], flipped[order])
    names = compare.available_models()
    frame = compare.aligned(names)
    assert names == ["baseline", "fastai"]
    assert frame["correct_baseline"].all() and (~frame["correct_fastai"]).sum() == 3
    assert frame["bracketed"].sum() == 10
    frame = compare.add_ensemble(frame, names)
    assert frame["prob_ensemble"].tolist() == pytest.approx(((good + flipped) / 2).tolist())
    table = compare.comparison_table(frame, names + ["ensemble"])
    assert table.loc["baseline", "macro-F1"] == 1.0
    pairs = compare.pairwise(frame, names)
    assert pairs.loc[0, ["only A right", "only B right"]].tolist() == [3, 0]
    groups = compare.by_group(frame, names, "language")
    assert groups.loc["German", "too_small"] and not groups.loc["English", "too_small"]
    wrong, right = compare.extremes(frame, "fastai", n=2)
    assert len(wrong) == 2 and (wrong["label"] != wrong["predicted"]).all()
    # a model scored on other titles is refused
    evaluate.evaluate("transformer", test.iloc[:-1], good[:-1])
    with pytest.raises(ValueError, match="other test titles"):
        compare.aligned(["baseline", "transformer"])

"""Paired tests: are two models really different on the same test books?

Used by :func:`blgenre.evaluation.evaluate.versus` (the model chapters' comparison with the
baseline) and by :mod:`blgenre.evaluation.compare` (chapter *Where the models go wrong*). Both
models are scored on the *same* titles, so the tests look only at where they differ: McNemar's
exact test on the titles exactly one model gets right, and a paired bootstrap of the difference
in macro-F1.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from blgenre.evaluation.evaluate import macro_f1, macro_f1_rows

N_PAIRED_BOOTSTRAP = 2000


def mcnemar_exact(y_true, pred_a, pred_b) -> dict:
    """McNemar's exact test on the discordant pairs.

    ``b``: titles only model A gets right; ``c``: titles only model B gets right. If both models
    were equally accurate, each discordant title would fall either way with probability 1/2, so
    ``b`` follows Binomial(b + c, 1/2); the two-sided p-value is
    ``min(1, 2 * P(X <= min(b, c)))``.
    """
    y, a, bb = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    a_ok, b_ok = a == y, bb == y
    b = int((a_ok & ~b_ok).sum())
    c = int((~a_ok & b_ok).sum())
    p = 1.0 if b + c == 0 else float(min(1.0, 2 * stats.binom.cdf(min(b, c), b + c, 0.5)))
    return {"only_a_right": b, "only_b_right": c, "p_value": p}


def paired_bootstrap(y_true, pred_a, pred_b, n: int = N_PAIRED_BOOTSTRAP, seed: int = 0,
                     alpha: float = 0.05) -> dict:
    """Bootstrap of macro-F1(B) - macro-F1(A): both models are scored on the *same* resampled
    titles each time, so the spread reflects only the difference between them."""
    y, a, b = (np.asarray(v) for v in (y_true, pred_a, pred_b))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(y), size=(n, len(y)))
    diffs = macro_f1_rows(y[idx], b[idx]) - macro_f1_rows(y[idx], a[idx])
    lo, hi = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    return {"diff": macro_f1(y, b) - macro_f1(y, a), "lo": float(lo), "hi": float(hi),
            "share_b_better": float((diffs > 0).mean())}


def pairwise(frame: pd.DataFrame, names: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """McNemar and paired bootstrap for every pair of models (A listed first, B second)."""
    rows = []
    for a, b in itertools.combinations(names, 2):
        m = mcnemar_exact(frame["label"], frame[f"pred_{a}"], frame[f"pred_{b}"])
        bs = paired_bootstrap(frame["label"], frame[f"pred_{a}"], frame[f"pred_{b}"], seed=seed)
        rows.append({"A": a, "B": b, "only A right": m["only_a_right"],
                     "only B right": m["only_b_right"], "McNemar p": m["p_value"],
                     "macro-F1 B − A": bs["diff"], "CI low": bs["lo"], "CI high": bs["hi"]})
    return pd.DataFrame(rows)


def describe_pair(row: pd.Series | dict, alpha: float = 0.05) -> str:
    """One row of :func:`pairwise` in plain words."""
    a, b, nb, nc = row["A"], row["B"], row["only A right"], row["only B right"]
    p, d, lo, hi = row["McNemar p"], row["macro-F1 B − A"], row["CI low"], row["CI high"]
    text = (f"The models {a} and {b} disagree on {nb + nc} test titles: {a} alone is right on {nb}, "
            f"{b} alone on {nc}. ")
    if p < alpha:
        text += (f"A split this uneven would be unlikely if the two were equally accurate "
                 f"(McNemar's exact p = {p:.3g}). ")
    else:
        text += (f"A split like this could easily happen if the two were equally accurate "
                 f"(McNemar's exact p = {p:.3g}). ")
    text += f"The macro-F1 of {b} is {d:+.3f} against {a} (paired bootstrap 95% CI {lo:+.3f} to {hi:+.3f}); "
    if lo > 0:
        text += f"the interval lies above zero, so {b} is better on this measure."
    elif hi < 0:
        text += f"the interval lies below zero, so {a} is better on this measure."
    else:
        text += "the interval includes zero, so this test set cannot tell which is better."
    return text

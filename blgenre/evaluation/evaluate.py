"""The shared evaluation harness: every model in the book is scored by these functions.

``evaluate`` takes a model's probabilities of *Fiction* on the test split and writes
``artifacts/metrics/<model>.json`` (overall, per class, per language, per decade, bootstrap
confidence intervals, confusion matrix) and ``artifacts/predictions/<model>.csv``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from blgenre.data import LABELS
from blgenre.paths import metrics_path, predictions_path

#: Groups smaller than this are reported but flagged as too small to compare.
MIN_GROUP = 30
N_BOOTSTRAP = 1000


def labels_from_proba(prob_fiction: Sequence[float], threshold: float = 0.5,
                      labels: Sequence[str] = LABELS) -> np.ndarray:
    """``Fiction`` where the probability of Fiction is at least ``threshold``.

    Given a 2-D array (one column per label of ``labels``), the most probable label of each row.
    """
    prob = np.asarray(prob_fiction)
    if prob.ndim == 2:
        return np.asarray(labels)[prob.argmax(axis=1)]
    return np.where(prob >= threshold, labels[0], labels[1])


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] = LABELS) -> float:
    """Unweighted mean of the classes' F1 (every class of ``labels`` always counted)."""
    return float(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0))


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str],
                           labels: Sequence[str] = LABELS) -> dict:
    """Accuracy, macro-F1, per-class precision / recall / F1 / support and the confusion matrix."""
    labels = list(labels)
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "n": int(len(y_true)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": macro_f1(y_true, y_pred, labels),
        "per_class": {
            label: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                    "support": int(s[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": {
            "labels": labels,
            "matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        },
    }


def bootstrap_ci(
    y_true: Sequence[str],
    y_pred: Sequence[str],
    metric: Callable[[np.ndarray, np.ndarray], float] = macro_f1,
    n: int = N_BOOTSTRAP,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of ``metric`` (resampling test titles)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    stats = [metric(y_true[idx], y_pred[idx])
             for idx in rng.integers(0, len(y_true), size=(n, len(y_true)))]
    lo, hi = np.quantile(stats, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def grouped_metrics(frame: pd.DataFrame, by: str, min_group: int = MIN_GROUP) -> dict:
    """Accuracy and macro-F1 per value of column ``by`` (needs ``label`` and ``pred`` columns)."""
    out = {}
    for key, g in frame.groupby(by, sort=True):
        out[str(key)] = {
            "n": int(len(g)),
            "n_fiction": int((g["label"] == LABELS[0]).sum()),
            "accuracy": float(accuracy_score(g["label"], g["pred"])),
            # macro-F1 is undefined in a group whose books all carry one label
            "macro_f1": macro_f1(g["label"], g["pred"]) if g["label"].nunique() > 1 else None,
            "too_small": bool(len(g) < min_group),
        }
    return out


def evaluate(
    name: str,
    test: pd.DataFrame,
    prob_fiction: Sequence[float],
    extra: dict | None = None,
    write: bool = True,
) -> dict:
    """Score ``prob_fiction`` against ``test['label']``; write metrics and predictions for ``name``."""
    prob = np.asarray(prob_fiction, dtype=float)
    if len(prob) != len(test):
        raise ValueError(f"{len(prob)} probabilities for {len(test)} test titles")
    frame = test.assign(prob_fiction=prob, pred=labels_from_proba(prob))
    result = {"model": name, **classification_metrics(frame["label"], frame["pred"])}
    lo, hi = bootstrap_ci(frame["label"], frame["pred"])
    result["macro_f1_ci"] = [lo, hi]
    result["ci"] = {"method": "percentile bootstrap over test titles", "n": N_BOOTSTRAP,
                    "level": 0.95}
    result["by_language"] = grouped_metrics(frame, "language")
    result["by_decade"] = grouped_metrics(frame, "decade")
    result["extra"] = extra or {}
    if write:
        metrics_path(name).write_text(json.dumps(result, indent=2))
        cols = [c for c in ("record_id", "title", "label", "language", "decade", "title_chars")
                if c in frame.columns]
        frame[cols + ["prob_fiction", "pred"]].to_csv(predictions_path(name), index=False)
    return result


def load_metrics(name: str) -> dict | None:
    """A model's saved metrics, or ``None`` if its chapter has not run."""
    path = metrics_path(name)
    return json.loads(path.read_text()) if path.is_file() else None


def summary_table(names: Sequence[str]) -> pd.DataFrame:
    """One row per model that has metrics: macro-F1 with its CI, accuracy, per-class F1."""
    rows = []
    for name in names:
        m = load_metrics(name)
        if m is None:
            continue
        rows.append({
            "model": name,
            "macro-F1": round(m["macro_f1"], 3),
            "95% CI": f"{m['macro_f1_ci'][0]:.3f}–{m['macro_f1_ci'][1]:.3f}",
            "accuracy": round(m["accuracy"], 3),
            **{f"F1 {k}": round(v["f1"], 3) for k, v in m["per_class"].items()},
            "n": m["n"],
        })
    return pd.DataFrame(rows).set_index("model") if rows else pd.DataFrame()


def group_table(metrics: dict, by: str = "by_language") -> pd.DataFrame:
    """A model's per-group results as a table, largest groups first."""
    df = pd.DataFrame(metrics[by]).T
    df.index.name = by.removeprefix("by_")
    return df.sort_values("n", ascending=False)

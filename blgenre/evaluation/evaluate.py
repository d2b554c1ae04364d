"""The shared evaluation harness: every model in the book is scored by these functions.

Chapters of Part II (*A baseline*, *Training a fastai ULMFiT model*, *Fine-tuning a
transformer*) and *Where the models go wrong*. ``evaluate`` takes a model's probabilities of
*Fiction* on the test split and writes ``artifacts/metrics/<model>.json`` (overall, per class,
per language, per decade, bootstrap confidence intervals, confusion matrix) and
``artifacts/predictions/<model>.csv``. The chapters read them back with :func:`load_metrics` and
:func:`read_predictions`, and compare two models with :func:`versus` and
:func:`language_table` instead of copying that code from chapter to chapter.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from blgenre.data import LABELS
from blgenre.errors import ModelError
from blgenre.models import registry
from blgenre.paths import metrics_path, predictions_path

#: Groups smaller than this are reported but flagged as too small to compare.
MIN_GROUP = 30
N_BOOTSTRAP = 1000
#: The one decision rule of the book: *Fiction* when its probability is at least this.
FICTION_THRESHOLD = 0.5


class KindNames(Sequence):
    """The registered model kinds, read afresh from :mod:`blgenre.models.registry` on each use
    (so a kind registered later, or in a test, is included)."""

    def __getitem__(self, index):
        return registry.names()[index]

    def __len__(self) -> int:
        return len(registry.names())

    def __repr__(self) -> str:
        return repr(registry.names())


#: Every model kind the book trains, in training order (a live view of the registry).
MODELS = KindNames()


def labels_from_proba(prob_fiction: Sequence[float], threshold: float = FICTION_THRESHOLD,
                      labels: Sequence[str] = LABELS) -> np.ndarray:
    """``Fiction`` where the probability of Fiction is at least ``threshold``.

    Given a 2-D array (one column per label of ``labels``), the most probable label of each row.
    """
    prob = np.asarray(prob_fiction, dtype=float)
    if prob.ndim == 2:
        return np.asarray(labels)[prob.argmax(axis=1)]
    return np.where(prob >= threshold, labels[0], labels[1])


def macro_f1(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str] = LABELS) -> float:
    """Unweighted mean of the classes' F1 (every class of ``labels`` always counted)."""
    return float(f1_score(y_true, y_pred, labels=list(labels), average="macro", zero_division=0))


def macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray,
                  labels: Sequence[str] = LABELS) -> np.ndarray:
    """:func:`macro_f1` of each row of two 2-d arrays of labels (one row per bootstrap resample).

    The same formula as scikit-learn's, F1 = 2 TP / (true + predicted) per class and 0 where a
    class is neither true nor predicted, computed for all rows at once: a bootstrap of 1,000
    resamples takes milliseconds instead of seconds.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    scores = []
    for label in labels:
        t, p = y_true == label, y_pred == label
        tp, denom = (t & p).sum(axis=1), t.sum(axis=1) + p.sum(axis=1)
        scores.append(np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0))
    return np.mean(scores, axis=0)


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
    idx = rng.integers(0, len(y_true), size=(n, len(y_true)))
    if metric is macro_f1:
        stats = macro_f1_rows(y_true[idx], y_pred[idx])
    else:
        stats = [metric(y_true[i], y_pred[i]) for i in idx]
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


def required_metrics(name: str) -> dict:
    """:func:`load_metrics`, for callers that cannot go on without them: a clear error if absent."""
    metrics = load_metrics(name)
    if metrics is None:
        raise ModelError(f"no metrics for {name!r} ({metrics_path(name)}): run the chapter that "
                         "trains it first")
    return metrics


def read_predictions(name: str) -> pd.DataFrame:
    """A model's test predictions, one row per test book (``record_id`` as text, and no title
    such as "None" or "NA" read as missing)."""
    path = predictions_path(name)
    if not path.is_file():
        raise ModelError(f"no predictions for {name!r} ({path}): run the chapter that trains it "
                         "first")
    return pd.read_csv(path, dtype={"record_id": str}, keep_default_na=False)


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


def language_table(names: Sequence[str], min_group: int = MIN_GROUP,
                   by: str = "by_language") -> pd.DataFrame:
    """Macro-F1 per language (or other group in the metrics, ``by``) for several models side by
    side: columns ``n``, ``<model> macro-F1`` (NaN where a group has one label only) and
    ``too small`` (fewer than ``min_group`` test books); largest groups first."""
    names = list(names)
    if not names:
        raise ValueError("language_table needs at least one model")
    tables = {name: group_table(required_metrics(name), by) for name in names}
    out = pd.DataFrame({"n": tables[names[0]]["n"].astype(int)})
    for name, table in tables.items():
        out[f"{name} macro-F1"] = pd.to_numeric(table["macro_f1"], errors="coerce")
    out["too small"] = out["n"] < min_group
    return out.sort_values("n", ascending=False, kind="stable")


def language_sentence(table: pd.DataFrame, name: str, other: str) -> str:
    """The languages large enough to judge in a :func:`language_table`, as one phrase."""
    large = table[~table["too small"]].dropna(subset=[f"{name} macro-F1"])
    return "; ".join(f"{lang} {row[f'{name} macro-F1']:.3f} ({other} "
                     f"{row[f'{other} macro-F1']:.3f}, n = {int(row['n'])})"
                     for lang, row in large.iterrows()) or f"no language has {MIN_GROUP} test books"


def _versus_sentence(r: dict) -> str:
    a, b = r["a"], r["b"]
    scores = (f"({r['a_f1']:.3f} against {r['b_f1']:.3f}; paired bootstrap 95% interval of the "
              f"difference {r['lo']:+.3f} to {r['hi']:+.3f}, McNemar's exact p = {r['p_value']:.3g})")
    if r["diff"] == 0:
        head = f"On the same {r['n']} test books the {a} model's macro-F1 equals the {b} model's"
    else:
        head = (f"On the same {r['n']} test books the {a} model's macro-F1 is {r['abs_diff']:.3f} "
                f"{r['word']} the {b} model's")
    verdict = {"better": f"so {a} is better on this measure",
               "worse": f"so {b} is better on this measure",
               "undecided": "so this test set cannot tell which is better"}[r["verdict"]]
    return f"{head} {scores}, {verdict}."


def versus(a_name: str, b_name: str, seed: int = 0) -> dict:
    """Model ``a_name`` compared with model ``b_name`` on the same test books.

    Returns the macro-F1 of each (``a_f1``, ``b_f1``), ``diff`` = a − b with ``abs_diff`` and
    ``word`` ("above", "below" or "equal to": a relative to b), the paired-bootstrap 95%
    interval of the difference (``lo``, ``hi``), McNemar's exact test on the books only one model
    gets right (``only_a_right``, ``only_b_right``, ``p_value``), ``verdict`` ("better" if the
    interval lies above zero, "worse" if below, else "undecided"), ``ci_overlap`` (whether the
    two models' own intervals in their metrics overlap), ``sentence`` (one plain-English sentence)
    and ``details`` (the longer explanation of
    :func:`blgenre.evaluation.compare.describe_pair`).
    """
    from blgenre.evaluation import compare

    if a_name == b_name:
        raise ValueError(f"versus compares two different models, not {a_name!r} with itself")
    frame = compare.aligned([a_name, b_name])
    y, pred_a, pred_b = frame["label"], frame[f"pred_{a_name}"], frame[f"pred_{b_name}"]
    test = compare.mcnemar_exact(y, pred_a, pred_b)
    boot = compare.paired_bootstrap(y, pred_b, pred_a, seed=seed)  # its B − A is a − b here
    diff = boot["diff"]
    r = {"a": a_name, "b": b_name, "n": int(len(frame)),
         "a_f1": macro_f1(y, pred_a), "b_f1": macro_f1(y, pred_b),
         "diff": diff, "abs_diff": abs(diff),
         "word": "above" if diff > 0 else "below" if diff < 0 else "equal to",
         "lo": boot["lo"], "hi": boot["hi"], "p_value": test["p_value"],
         "only_a_right": test["only_a_right"], "only_b_right": test["only_b_right"],
         "verdict": "better" if boot["lo"] > 0 else "worse" if boot["hi"] < 0 else "undecided"}
    ci_a, ci_b = required_metrics(a_name)["macro_f1_ci"], required_metrics(b_name)["macro_f1_ci"]
    r["ci_overlap"] = bool(ci_a[0] <= ci_b[1] and ci_b[0] <= ci_a[1])
    r["sentence"] = _versus_sentence(r)
    r["details"] = compare.describe_pair({
        "A": b_name, "B": a_name, "only A right": r["only_b_right"],
        "only B right": r["only_a_right"], "McNemar p": r["p_value"],
        "macro-F1 B − A": diff, "CI low": r["lo"], "CI high": r["hi"]})
    return r

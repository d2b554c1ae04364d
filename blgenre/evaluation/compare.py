"""Comparing the book's models on the one test split, and looking at where they go wrong.

Everything here reads what the model chapters wrote through :func:`blgenre.evaluation.evaluate.evaluate`:
``artifacts/metrics/<model>.json`` and ``artifacts/predictions/<model>.csv``. Nothing is
retrained. The functions are used by the chapter *Where the models go wrong*; the paired tests
live in :mod:`blgenre.evaluation.paired` and are re-exported here.

Definitions used throughout

* **confidence** of a prediction: the probability the model gives to the label it predicts,
  ``max(p, 1 - p)`` where ``p`` is the probability of *Fiction*; it lies between 0.5 and 1.
* **expected calibration error** (ECE, :func:`expected_calibration_error`): split the confidence
  range [0.5, 1] into equal-width bins; in each bin compare the share of correct predictions with
  the mean confidence; ECE is the average of the absolute gaps, weighted by the share of test
  titles in each bin (Guo et al. 2017, with the empty lower half of [0, 1] left out).
* **coverage at a precision target** (:func:`coverage_at_precision`): label automatically every
  title whose confidence is at least a threshold; coverage is the share of titles so labelled
  and precision the share of them that are right. The threshold chosen is the one that labels
  the most titles while keeping precision at or above the target.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from blgenre.data import LABELS
from blgenre.evaluation.evaluate import (  # noqa: F401 - MODELS, load_metrics: used by chapters
    MIN_GROUP,
    MODELS,
    bootstrap_ci,
    classification_metrics,
    grouped_metrics,
    labels_from_proba,
    load_metrics,
    macro_f1,
    read_predictions,
)
from blgenre.evaluation.paired import (  # noqa: F401 - re-exported for the chapters
    N_PAIRED_BOOTSTRAP,
    describe_pair,
    mcnemar_exact,
    paired_bootstrap,
    pairwise,
)
from blgenre.paths import metrics_path, predictions_path

#: Precision targets for labelling titles without a person checking them.
PRECISION_TARGETS = (0.95, 0.99)
#: Title-length bins, in words (lower edges inclusive).
WORD_BINS = (0, 5, 10, 20, np.inf)
WORD_BIN_LABELS = ("1–5 words", "6–10 words", "11–20 words", "21+ words")
N_BINS = 10
#: A cataloguer's note in square brackets, e.g. "[A novel.]".
BRACKETS = r"\[[^\]]*\]"


# --- Loading ---------------------------------------------------------------------------------


def available_models(names: Sequence[str] = MODELS) -> list[str]:
    """The models, in ``names`` order, whose metrics and predictions both exist."""
    return [n for n in names if metrics_path(n).is_file() and predictions_path(n).is_file()]


def missing_models(names: Sequence[str] = MODELS) -> list[str]:
    """The models in ``names`` that have no saved metrics or predictions yet."""
    have = set(available_models(names))
    return [n for n in names if n not in have]


def confidence(prob_fiction) -> np.ndarray:
    """Probability of the predicted label: ``max(p, 1 - p)``."""
    p = np.asarray(prob_fiction, dtype=float)
    return np.maximum(p, 1 - p)


def word_bin(n_words) -> pd.Categorical:
    """Title length in words, binned as :data:`WORD_BIN_LABELS`."""
    return pd.cut(pd.Series(n_words), bins=list(WORD_BINS), labels=list(WORD_BIN_LABELS), right=True)


def aligned(names: Sequence[str]) -> pd.DataFrame:
    """One row per test title with every model's ``prob_<m>``, ``pred_<m>``, ``conf_<m>`` and
    ``correct_<m>`` columns, plus ``title_words``, ``length`` (word bin) and ``bracketed``.

    Raises ``ValueError`` if the models were not scored on the same test titles.
    """
    base = None
    for name in names:
        p = read_predictions(name)
        cols = {"prob_fiction": f"prob_{name}", "pred": f"pred_{name}"}
        if base is None:
            base = p.rename(columns=cols)
            continue
        if sorted(p["record_id"]) != sorted(base["record_id"]):
            raise ValueError(f"{name} was scored on other test titles than {names[0]}; "
                             "re-run its chapter on the book's split")
        base = base.merge(p[["record_id", "prob_fiction", "pred"]].rename(columns=cols),
                          on="record_id", how="left", validate="one_to_one")
    if base is None:
        raise ValueError("no models given")
    for name in names:
        base[f"conf_{name}"] = confidence(base[f"prob_{name}"])
        base[f"correct_{name}"] = base[f"pred_{name}"] == base["label"]
    base["title_words"] = base["title"].str.split().str.len()
    base["length"] = word_bin(base["title_words"]).to_numpy()
    base["bracketed"] = base["title"].str.contains(BRACKETS, regex=True)
    return base


def add_ensemble(frame: pd.DataFrame, names: Sequence[str], name: str = "ensemble") -> pd.DataFrame:
    """Add the average of the models' probabilities of Fiction as model ``name``."""
    p = frame[[f"prob_{m}" for m in names]].mean(axis=1).to_numpy()
    out = frame.copy()
    out[f"prob_{name}"] = p
    out[f"pred_{name}"] = labels_from_proba(p)
    out[f"conf_{name}"] = confidence(p)
    out[f"correct_{name}"] = out[f"pred_{name}"] == out["label"]
    return out


# --- Calibration and thresholds --------------------------------------------------------------


def reliability(correct, conf, n_bins: int = N_BINS, lo: float = 0.5) -> pd.DataFrame:
    """Per equal-width confidence bin on [lo, 1]: titles, mean confidence and accuracy.

    Bins are closed on the left; the last bin also holds confidence 1.0.
    """
    correct = np.asarray(correct, dtype=float)
    conf = np.asarray(conf, dtype=float)
    edges = np.linspace(lo, 1.0, n_bins + 1)
    idx = np.clip(np.floor((conf - lo) / (1.0 - lo) * n_bins).astype(int), 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        m = idx == b
        rows.append({"bin_lo": edges[b], "bin_hi": edges[b + 1], "n": int(m.sum()),
                     "confidence": float(conf[m].mean()) if m.any() else np.nan,
                     "accuracy": float(correct[m].mean()) if m.any() else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(correct, conf, n_bins: int = N_BINS, lo: float = 0.5) -> float:
    """ECE = sum over bins of (share of titles in bin) x |accuracy in bin - mean confidence in bin|."""
    table = reliability(correct, conf, n_bins, lo)
    used = table[table["n"] > 0]
    weights = used["n"] / used["n"].sum()
    return float((weights * (used["accuracy"] - used["confidence"]).abs()).sum())


def coverage_curve(correct, conf) -> pd.DataFrame:
    """For each distinct confidence ``t`` (highest first): titles with confidence >= t, their
    share (coverage) and the share of them that are correct (precision)."""
    correct = np.asarray(correct, dtype=bool)
    conf = np.asarray(conf, dtype=float)
    order = np.argsort(-conf, kind="stable")
    c, ok = conf[order], correct[order]
    n_ok = np.cumsum(ok)
    # keep the last position of each run of tied confidences: a threshold labels all ties
    last = np.r_[c[1:] != c[:-1], True]
    n = np.arange(1, len(c) + 1)[last]
    return pd.DataFrame({"threshold": c[last], "n_labelled": n, "coverage": n / len(c),
                         "correct": n_ok[last], "precision": n_ok[last] / n})


def coverage_at_precision(correct, conf, target: float) -> dict:
    """The threshold that labels the most titles with precision >= ``target``.

    Also returns the errors among the labelled titles and a one-sided 95% lower bound of
    their precision (Clopper–Pearson), since a precision measured on few titles is uncertain.
    With no threshold meeting the target, ``threshold`` is ``None`` and nothing is labelled.
    """
    curve = coverage_curve(correct, conf)
    ok = curve[curve["precision"] >= target]
    if ok.empty:
        return {"target": target, "threshold": None, "n_labelled": 0, "coverage": 0.0,
                "precision": None, "errors": 0, "precision_lo": None}
    row = ok.loc[ok["n_labelled"].idxmax()]
    n, k = int(row["n_labelled"]), int(row["correct"])
    lo = stats.binomtest(k, n).proportion_ci(confidence_level=0.90, method="exact").low
    return {"target": target, "threshold": float(row["threshold"]), "n_labelled": n,
            "coverage": float(row["coverage"]), "precision": float(row["precision"]),
            "errors": n - k, "precision_lo": float(lo)}


def threshold_table(frame: pd.DataFrame, names: Sequence[str],
                    targets: Sequence[float] = PRECISION_TARGETS) -> pd.DataFrame:
    """:func:`coverage_at_precision` for every model and target; ``as_fiction``: titles labelled
    Fiction automatically; ``fiction_found``: share of the test fiction labelled so, rightly."""
    rows = []
    for name, target in itertools.product(names, targets):
        r = coverage_at_precision(frame[f"correct_{name}"], frame[f"conf_{name}"], target)
        if r["threshold"] is not None:
            chosen = frame[frame[f"conf_{name}"] >= r["threshold"]]
            as_fiction = chosen[f"pred_{name}"] == LABELS[0]
            r["as_fiction"] = int(as_fiction.sum())
            # share of all test fiction that is labelled Fiction automatically (and rightly)
            r["fiction_found"] = float((as_fiction & (chosen["label"] == LABELS[0])).sum()
                                       / max(1, (frame["label"] == LABELS[0]).sum()))
        else:
            r["as_fiction"], r["fiction_found"] = 0, 0.0
        rows.append({"model": name, **r})
    return pd.DataFrame(rows)


# --- Tables ----------------------------------------------------------------------------------


def scores(frame: pd.DataFrame, name: str, seed: int = 0) -> dict:
    """Metrics of model ``name`` from the aligned frame (used for models with no JSON, e.g. the
    ensemble): those of :func:`blgenre.evaluation.evaluate.classification_metrics`, a bootstrap CI and ECE."""
    m = classification_metrics(frame["label"], frame[f"pred_{name}"])
    m["macro_f1_ci"] = list(bootstrap_ci(frame["label"], frame[f"pred_{name}"], seed=seed))
    m["ece"] = expected_calibration_error(frame[f"correct_{name}"], frame[f"conf_{name}"])
    return m


def comparison_table(frame: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """One row per model: macro-F1 with its 95% bootstrap CI, accuracy, ECE and per-class
    precision, recall and F1, all on the same test titles."""
    rows = []
    for name in names:
        m = scores(frame, name)
        row = {"model": name, "macro-F1": m["macro_f1"],
               "95% CI": f"{m['macro_f1_ci'][0]:.3f}–{m['macro_f1_ci'][1]:.3f}",
               "accuracy": m["accuracy"], "ECE": m["ece"]}
        for label, s in m["per_class"].items():
            for k in ("precision", "recall", "f1"):
                row[f"{label} {'F1' if k == 'f1' else k}"] = s[k]
        row["n"] = m["n"]
        rows.append(row)
    return pd.DataFrame(rows).set_index("model").round(3)


def by_group(frame: pd.DataFrame, names: Sequence[str], by: str,
             min_group: int = MIN_GROUP) -> pd.DataFrame:
    """Macro-F1 and accuracy per value of ``by`` for each model, with the group's size, its
    number of fiction titles and whether it is too small (fewer than ``min_group`` titles)."""
    out = None
    for name in names:
        g = pd.DataFrame(grouped_metrics(frame.assign(pred=frame[f"pred_{name}"]), by, min_group)).T
        g = g.rename(columns={"macro_f1": f"F1 {name}", "accuracy": f"acc {name}"})
        out = g if out is None else out.join(g[[f"F1 {name}", f"acc {name}"]])
    out = out[["n", "n_fiction", "too_small"] + [c for c in out.columns if c.startswith(("F1", "acc"))]]
    if by == "length":
        out = out.reindex([w for w in WORD_BIN_LABELS if w in out.index])
    elif by != "decade":
        out = out.sort_values("n", ascending=False)
    return out


def extremes(frame: pd.DataFrame, name: str, n: int = 10, flags: pd.DataFrame | None = None
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` most confident errors and the ``n`` least confident correct predictions.

    ``flags`` (the audit's per-record verdicts) adds the audit ``status`` column when given.
    """
    cols = ["title", "label", f"pred_{name}", f"conf_{name}", "language", "decade"]
    f = frame
    if flags is not None:
        f = f.merge(flags[["record_id", "status"]].rename(columns={"status": "audit"}),
                    on="record_id", how="left")
        cols.append("audit")
    wrong = f[~f[f"correct_{name}"]].sort_values(f"conf_{name}", ascending=False).head(n)
    right = f[f[f"correct_{name}"]].sort_values(f"conf_{name}").head(n)
    rename = {f"pred_{name}": "predicted", f"conf_{name}": "confidence"}
    return (wrong[cols].rename(columns=rename).reset_index(drop=True),
            right[cols].rename(columns=rename).reset_index(drop=True))


def error_profile(frame: pd.DataFrame, name: str, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """Share of titles with each trait among a model's errors and among its correct answers."""
    f = frame.assign(english=frame["language"] == "English",
                     fiction=frame["label"] == LABELS[0],
                     short=frame["title_words"] <= WORD_BINS[1])
    traits = {"bracketed note": "bracketed", "English": "english", "labelled Fiction": "fiction",
              f"≤ {WORD_BINS[1]} words": "short"}
    if flags is not None:
        f = f.merge(flags[["record_id", "status"]], on="record_id", how="left")
        f["suspect"] = f["status"] == "suspect"
        traits["audit: suspect record"] = "suspect"
    ok = f[f"correct_{name}"]
    rows = {k: {"errors": f.loc[~ok, c].mean(), "correct": f.loc[ok, c].mean()}
            for k, c in traits.items()}
    out = pd.DataFrame(rows).T
    out.loc["titles", :] = [int((~ok).sum()), int(ok.sum())]
    return out


def train_seconds(name: str) -> float | None:
    """Training time recorded in a model's metrics (``extra.train_seconds``), if any."""
    extra = (load_metrics(name) or {}).get("extra") or {}
    value = extra.get("train_seconds")
    return float(value) if value is not None else None


# --- Figures ---------------------------------------------------------------------------------


def plot_groups(table: pd.DataFrame, names: Sequence[str], title: str = ""):
    """Grouped horizontal bars of macro-F1 per group and model; small groups hatched."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) * max(1, len(names)) ** 0.5 + 1.4))
    height = 0.8 / len(names)
    y = np.arange(len(table))
    colors = plt.get_cmap("tab10").colors
    for k, name in enumerate(names):
        vals = pd.to_numeric(table[f"F1 {name}"], errors="coerce")
        bars = ax.barh(y + k * height, vals.fillna(0), height, color=colors[k], label=name)
        for bar, small in zip(bars, table["too_small"], strict=True):
            if small:
                bar.set_hatch("//")
                bar.set_alpha(0.45)
    for i, (n, nf, f1) in enumerate(zip(table["n"], table["n_fiction"],
                                        table[f"F1 {names[0]}"], strict=True)):
        note = f"n={int(n)}, fiction {int(nf)}" + ("" if f1 is not None and not pd.isna(f1)
                                                    else " (one label: no F1)")
        ax.text(1.01, i + 0.4 - height / 2, note, va="center", fontsize=7)
    ax.set_yticks(y + 0.4 - height / 2, [str(i) for i in table.index])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.35)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel(f"macro-F1 (hatched: fewer than {MIN_GROUP} test titles)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(names), fontsize=8,
              frameon=False)
    ax.set_title(title, pad=22)
    return fig


def plot_reliability(frame: pd.DataFrame, names: Sequence[str], n_bins: int = N_BINS):
    """Reliability diagram per model: accuracy against mean confidence per bin, with counts."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names) + 0.4, 3.6), squeeze=False,
                             sharey=True)
    for ax, name in zip(axes[0], names, strict=True):
        t = reliability(frame[f"correct_{name}"], frame[f"conf_{name}"], n_bins)
        e = expected_calibration_error(frame[f"correct_{name}"], frame[f"conf_{name}"], n_bins)
        width = t["bin_hi"] - t["bin_lo"]
        ax.bar(t["bin_lo"], t["accuracy"].fillna(0), width=width, align="edge",
               color="#4d7ea8", edgecolor="white", label="accuracy in bin")
        ax.plot([0.5, 1], [0.5, 1], color="grey", ls="--", lw=1, label="perfect calibration")
        for _, r in t[t["n"] > 0].iterrows():
            ax.text(r["bin_lo"] + width.iloc[0] / 2, 0.02, str(int(r["n"])), ha="center",
                    fontsize=7, color="white")
        ax.set_xlim(0.5, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("confidence (probability of predicted label)")
        ax.set_title(f"{name}: ECE {e:.3f}", fontsize=10)
    axes[0][0].set_ylabel("share correct")
    axes[0][0].legend(fontsize=7, loc="upper left")
    return fig


def plot_coverage(frame: pd.DataFrame, names: Sequence[str],
                  targets: Sequence[float] = PRECISION_TARGETS):
    """Precision against coverage as the confidence threshold is lowered, one line per model."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    colors = plt.get_cmap("tab10").colors
    for k, name in enumerate(names):
        c = coverage_curve(frame[f"correct_{name}"], frame[f"conf_{name}"])
        ax.plot(100 * c["coverage"], 100 * c["precision"], color=colors[k], label=name)
    for t in targets:
        ax.axhline(100 * t, color="grey", ls=":", lw=1)
        ax.text(99, 100 * t + 0.3, f"{100 * t:.0f}% precision", fontsize=7, color="grey",
                ha="right")
    ax.set_xlabel("coverage: % of test titles labelled automatically")
    ax.set_ylabel("precision: % of those correct")
    ax.set_xlim(0, 100)
    ax.set_ylim(min(70, ax.get_ylim()[0]), 100.5)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title("Labelling only the titles a model is most confident about")
    return fig

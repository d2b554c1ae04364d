"""From labelling functions to probabilistic labels for the unlabelled pool (snorkel).

Serves the chapter *Weak supervision* and the weak-label model variants. The steps:

1. the baseline (trained on the gold training labels) scores every title, for the model-based
   labelling function;
2. every labelling function votes on the validation split and on the pool (:func:`apply_lfs`);
3. :class:`snorkel.labeling.model.LabelModel` learns, from the pool's votes alone, how far to
   trust each function, and turns each title's votes into a probability of Fiction;
4. a title gets a weak label if that probability is confident enough; the confidence threshold
   is the lowest one whose validation accuracy reaches :data:`TARGET_ACCURACY`.

:func:`weak_labels` runs all of it once per split and mode and caches the result in
``artifacts/weak/``: the models that learn from the collection read it from there.
"""

from __future__ import annotations

import json
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from blgenre.data import LABELS
from blgenre.paths import artifacts_dir
from blgenre.weak import lfs as lfmod

SEED = 0
#: Accuracy on the validation split a weak label must reach on its own (a weak label is
#: cheaper than a gold one; it should not be much worse than the gold labels' own agreement).
TARGET_ACCURACY = 0.9
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)
#: Bump when the labelling functions or the label model change (invalidates the cache).
VERSION = 1


def gold_votes(labels: pd.Series) -> np.ndarray:
    """Gold labels as snorkel's integers (0 = Fiction, 1 = Non-fiction)."""
    return labels.map({LABELS[0]: lfmod.FICTION, LABELS[1]: lfmod.NONFICTION}).to_numpy()


def baseline_probs(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``baseline_prob``: the book's baseline's probability of Fiction."""
    from blgenre.models.lifecycle import ensure

    model = ensure("baseline").model
    return frame.assign(baseline_prob=model.predict_proba(frame["title"].tolist())[:, 0])


def apply_lfs(frame: pd.DataFrame, lfs: list) -> np.ndarray:
    """The votes matrix: one row per title, one column per labelling function."""
    from snorkel.labeling import LFApplier

    # snorkel's LFApplier over named tuples: the same votes as PandasLFApplier, several times
    # faster (no pandas Series built per title)
    cols = [c for c in ("title", "baseline_prob") if c in frame.columns]
    return LFApplier(lfs).apply(list(frame[cols].itertuples(index=False)), progress_bar=False)


def lf_summary(L: np.ndarray, lfs: list, y: np.ndarray | None = None,
               consistent: np.ndarray | None = None) -> pd.DataFrame:
    """snorkel's ``LFAnalysis`` table (coverage, overlaps, conflicts; accuracy where ``y``).

    With ``consistent`` (a boolean mask of the audit's consistent records) an extra column gives
    each function's accuracy on those records only.
    """
    from snorkel.labeling import LFAnalysis

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scipy, inside snorkel
        table = LFAnalysis(L, lfs).lf_summary(Y=y)
    if y is not None and consistent is not None:
        accs = []
        for j in range(L.shape[1]):
            voted = consistent & (L[:, j] != lfmod.ABSTAIN)
            accs.append(float((L[voted, j] == y[voted]).mean()) if voted.any() else np.nan)
        table["Emp. Acc. (consistent)"] = accs
    return table.drop(columns=["j"], errors="ignore")


def fit_label_model(L: np.ndarray, n_epochs: int = 200):
    """snorkel's label model, fitted on the pool's votes (no gold labels are used).

    No class balance is given: with the training split's (25% Fiction) the model grew
    overconfident (nearly every title above 0.9), which made the confidence useless.
    """
    import torch
    from snorkel.labeling.model import LabelModel

    model = LabelModel(cardinality=2, verbose=False, device="cpu")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 17 x 17 problem: more threads only add overhead
    try:
        model.fit(L, n_epochs=n_epochs, lr=0.01, l2=0.01, seed=SEED, progress_bar=False)
    finally:
        torch.set_num_threads(threads)
    return model


def majority_probs(L: np.ndarray) -> np.ndarray:
    """Majority vote as a probability of Fiction (0.5 on ties and where every function abstains)."""
    fic = (L == lfmod.FICTION).sum(axis=1)
    non = (L == lfmod.NONFICTION).sum(axis=1)
    total = fic + non
    return np.where(total > 0, fic / np.maximum(total, 1), 0.5)


def score_probs(prob_fiction: np.ndarray, y: np.ndarray, L: np.ndarray) -> dict:
    """Coverage (titles with a vote and no tie), accuracy and macro-F1 on the covered titles."""
    from blgenre.evaluation.evaluate import labels_from_proba, macro_f1

    covered = (L != lfmod.ABSTAIN).any(axis=1) & (prob_fiction != 0.5)
    pred = labels_from_proba(prob_fiction[covered])
    gold = np.array(LABELS)[y[covered]]
    return {"coverage": float(covered.mean()), "titles labelled": int(covered.sum()),
            "accuracy": float((pred == gold).mean()) if covered.any() else np.nan,
            "macro-F1": macro_f1(gold, pred) if covered.any() else np.nan}


def threshold_table(prob_fiction: np.ndarray, y: np.ndarray,
                    thresholds: tuple[float, ...] = THRESHOLDS) -> pd.DataFrame:
    """For each confidence threshold: share of titles labelled and their accuracy."""
    conf = np.maximum(prob_fiction, 1 - prob_fiction)
    pred = np.where(prob_fiction >= 0.5, lfmod.FICTION, lfmod.NONFICTION)
    rows = []
    for t in thresholds:
        keep = conf >= t if t > 0.5 else conf > 0.5
        rows.append({"threshold": t, "coverage": float(keep.mean()), "titles": int(keep.sum()),
                     "accuracy": float((pred[keep] == y[keep]).mean()) if keep.any() else np.nan})
    return pd.DataFrame(rows).set_index("threshold")


def choose_threshold(table: pd.DataFrame, target: float = TARGET_ACCURACY) -> float:
    """The lowest threshold whose accuracy reaches ``target`` (the highest one if none does)."""
    ok = table.index[table["accuracy"] >= target]
    return float(ok.min()) if len(ok) else float(table.index.max())


def choose_model_lf_threshold(valid: pd.DataFrame, target: float = TARGET_ACCURACY) -> tuple:
    """Threshold of the baseline's labelling function: lowest with validation accuracy >= target."""
    table = threshold_table(valid["baseline_prob"].to_numpy(), gold_votes(valid["label"]),
                            thresholds=(0.6, 0.7, 0.8, 0.9, 0.95))
    return choose_threshold(table, target), table


def cache_key() -> dict:
    from blgenre import settings
    from blgenre.data import split

    return {"split_sha256": split.split_info()["split_sha256"], "version": VERSION,
            "mode": "workshop" if settings.workshop() else "full"}


@dataclass
class WeakRun:
    """Everything the chapter shows: the functions, their votes, the label model, the thresholds."""

    pool: pd.DataFrame
    valid: pd.DataFrame
    lfs: list
    L_pool: np.ndarray
    L_valid: np.ndarray
    label_model: object
    model_lf_threshold: float
    model_lf_table: pd.DataFrame
    threshold: float
    threshold_table: pd.DataFrame
    p_valid: np.ndarray
    seconds: dict

    @property
    def y_valid(self) -> np.ndarray:
        return gold_votes(self.valid["label"])


def _label_probs(label_model, L: np.ndarray) -> np.ndarray:
    """The label model's probability of Fiction; 0.5 where every function abstained."""
    voted = (L != lfmod.ABSTAIN).any(axis=1)
    return np.where(voted, label_model.predict_proba(L)[:, 0], 0.5)


def run() -> WeakRun:
    """Vote on the pool and the validation split, fit the label model, choose the thresholds."""
    from blgenre.data import split
    from blgenre.data.unlabelled import unlabelled_pool

    seconds, start = {}, time.perf_counter()
    pool = unlabelled_pool()
    seconds["pool"] = time.perf_counter() - start
    pool = baseline_probs(pool)
    valid = baseline_probs(split.part("valid"))
    seconds["baseline on pool"] = time.perf_counter() - start - sum(seconds.values())
    model_t, model_table = choose_model_lf_threshold(valid)
    lfs = lfmod.labelling_functions(model_t)
    L_pool, L_valid = apply_lfs(pool, lfs), apply_lfs(valid, lfs)
    seconds["labelling functions"] = time.perf_counter() - start - sum(seconds.values())
    label_model = fit_label_model(L_pool)
    p_valid = _label_probs(label_model, L_valid)
    table = threshold_table(p_valid, gold_votes(valid["label"]))
    seconds["label model"] = time.perf_counter() - start - sum(seconds.values())
    return WeakRun(pool, valid, lfs, L_pool, L_valid, label_model, model_t, model_table,
                   choose_threshold(table), table, p_valid,
                   {k: round(v, 1) for k, v in seconds.items()})


def pool_labels(result: WeakRun) -> pd.DataFrame:
    """The pool with ``prob_fiction``, ``confidence``, ``votes`` and ``weak_label`` (may be '')."""
    p = _label_probs(result.label_model, result.L_pool)
    conf = np.maximum(p, 1 - p)
    keep = (conf >= result.threshold) & (conf > 0.5)
    return result.pool.assign(
        prob_fiction=p, confidence=conf, votes=(result.L_pool != lfmod.ABSTAIN).sum(axis=1),
        weak_label=np.where(keep, np.where(p >= 0.5, LABELS[0], LABELS[1]), ""))


def weak_labels(refresh: bool = False, result: WeakRun | None = None) -> tuple[pd.DataFrame, dict]:
    """The pool with weak labels (see :func:`pool_labels`) and a summary, cached.

    Cached in ``artifacts/weak/``; recomputed (:func:`run`) when the split, the mode or
    :data:`VERSION` changes, or from ``result`` when the chapter has just run it.
    """
    folder = artifacts_dir("weak")
    csv, meta = folder / "weak_labels.csv", folder / "weak_labels.json"
    if result is None and not refresh and csv.is_file() and meta.is_file():
        info = json.loads(meta.read_text())
        if info.get("key") == cache_key():
            frame = pd.read_csv(csv, dtype={"id": str}, keep_default_na=False,
                                na_values={"year": [""], "prob_fiction": [""]})
            return frame, info
    result = result or run()
    out = pool_labels(result)
    info = {"key": cache_key(), "model_lf_threshold": result.model_lf_threshold,
            "threshold": result.threshold, "pool": len(out),
            "labelled": int((out["weak_label"] != "").sum()),
            "lfs": [lf.name for lf in result.lfs], "seconds": result.seconds}
    out.to_csv(csv, index=False)
    meta.write_text(json.dumps(info, indent=2))
    return out, info


def labelled_by(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    """Pool titles per value of ``by``: how many, how many got a weak label, and the Fiction share."""
    has = frame["weak_label"] != ""
    grouped = frame.assign(labelled=has, fiction=frame["weak_label"] == LABELS[0]).groupby(by)
    table = grouped.agg(titles=("title", "size"), labelled=("labelled", "sum"),
                        fiction=("fiction", "sum"))
    table["labelled share"] = table["labelled"] / table["titles"]
    table["fiction share of labelled"] = table["fiction"] / table["labelled"].where(
        table["labelled"] > 0)
    return table.drop(columns="fiction")

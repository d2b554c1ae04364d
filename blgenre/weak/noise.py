"""Label noise in the gold labels, found with cleanlab, and what to do about it.

Serves the chapter *Noisy labels*. The audit (chapter *Auditing the annotations*) found records
whose crowdsourced answers seem to describe another book (*suspect*). Here a second, independent
check: the baseline's out-of-fold probabilities on the training split (each title scored by a
model that never saw it) go to :func:`cleanlab.filter.find_label_issues`, which flags titles whose
label the model finds implausible. Then four ways of training are compared on the validation
split's *consistent* records (the ones the audit trusts): all labels, suspect records dropped,
cleanlab's issues relabelled, or suspect records treated as unlabelled (weak labels instead).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from blgenre.data import LABELS
from blgenre.data.text import clean_titles

N_FOLDS = 5
SEED = 0
STRATEGIES = ("all labels", "drop suspect", "relabel issues", "suspect as unlabelled")


def record_status(books: pd.DataFrame) -> pd.Series:
    """The audit's verdict per book (``suspect``, ``consistent``...), computed if not saved."""
    from blgenre import data
    from blgenre.data import audit

    flags = audit.load_record_flags()
    if flags is None:
        raw, _ = data.load_raw()
        flags = audit.record_flags(audit.row_checks(raw)).reset_index()
    status = flags.assign(record_id=flags["record_id"].astype(str)).set_index("record_id")["status"]
    return books["record_id"].astype(str).map(status).fillna("not audited").rename("status")


def baseline_settings() -> dict:
    """The book's baseline hyper-parameters (chosen on validation in its chapter)."""
    from blgenre.models.lifecycle import ensure

    return dict(ensure("baseline").model.meta["hyperparameters"])


def fit_baseline(train: pd.DataFrame, settings: dict, sample_weight=None):
    """A baseline pipeline with ``settings`` fitted on ``train`` (``title``, ``label``)."""
    from blgenre.models.baseline import build_pipeline

    pipe = build_pipeline(**settings)
    fit = {} if sample_weight is None else {"clf__sample_weight": np.asarray(sample_weight)}
    return pipe.fit(clean_titles(train["title"]), train["label"], **fit)


def out_of_fold(train: pd.DataFrame, settings: dict, folds: int = N_FOLDS) -> np.ndarray:
    """Out-of-fold probabilities ``(n, 2)`` [Fiction, Non-fiction], folds grouped by title."""
    from blgenre.data.split import groups
    from blgenre.models.baseline import prob_fiction

    train = train.reset_index(drop=True)
    probs = np.zeros((len(train), 2))
    cv = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=SEED)
    for fit_idx, held_idx in cv.split(train, train["label"], groups(train)):
        pipe = fit_baseline(train.iloc[fit_idx], settings)
        p = prob_fiction(pipe, train["title"].iloc[held_idx].tolist())
        probs[held_idx] = np.column_stack([p, 1 - p])
    return probs


def label_issues(train: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """``train`` with ``issue`` (cleanlab's verdict), ``issue_rank`` and ``p_given`` columns."""
    from cleanlab.filter import find_label_issues

    y = train["label"].map({LABELS[0]: 0, LABELS[1]: 1}).to_numpy()
    ranked = find_label_issues(labels=y, pred_probs=probs, filter_by="prune_by_noise_rate",
                               return_indices_ranked_by="self_confidence")
    rank = np.full(len(train), np.nan)
    rank[ranked] = np.arange(1, len(ranked) + 1)
    return train.reset_index(drop=True).assign(
        p_fiction=probs[:, 0], p_given=probs[np.arange(len(y)), y], issue=~np.isnan(rank),
        issue_rank=rank)


def overlap_table(issues: pd.DataFrame) -> pd.DataFrame:
    """Training books by the audit's verdict (rows) and cleanlab's (columns)."""
    table = pd.crosstab(issues["status"], issues["issue"].map({True: "label issue",
                                                               False: "no issue"}), margins=True,
                        margins_name="all")
    table["issue share"] = table.get("label issue", 0) / table["all"]
    return table


def likely_mislabelled(issues: pd.DataFrame, n: int = 10) -> pd.DataFrame:
    """The ``n`` titles cleanlab is surest are mislabelled."""
    top = issues[issues["issue"]].sort_values("issue_rank").head(n)
    return top[["title", "label", "p_given", "status", "language"]].rename(
        columns={"p_given": "P(given label)", "label": "given label"}).reset_index(drop=True)


def _weak_votes(frame: pd.DataFrame, p_fiction: np.ndarray) -> np.ndarray:
    """Labels from the weak-supervision rules plus the baseline's out-of-fold vote (majority)."""
    from blgenre.weak import labels as weak
    from blgenre.weak import lfs

    frame = frame.assign(baseline_prob=p_fiction)
    L = weak.apply_lfs(frame, lfs.labelling_functions())
    p = weak.majority_probs(L)
    return np.where(p > 0.5, LABELS[0], np.where(p < 0.5, LABELS[1], ""))


def training_sets(issues: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The training data under each of :data:`STRATEGIES`."""
    suspect = issues["status"] == "suspect"
    relabelled = issues.assign(label=np.where(
        issues["issue"], np.where(issues["label"] == LABELS[0], LABELS[1], LABELS[0]),
        issues["label"]))
    weak = _weak_votes(issues[suspect], issues.loc[suspect, "p_fiction"].to_numpy())
    as_unlabelled = pd.concat([issues[~suspect], issues[suspect].assign(label=weak)[weak != ""]])
    return {"all labels": issues, "drop suspect": issues[~suspect],
            "relabel issues": relabelled, "suspect as unlabelled": as_unlabelled}


def compare_strategies(issues: pd.DataFrame, valid: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """Validation macro-F1 (consistent records, and all) of a baseline trained each way."""
    from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
    from blgenre.models.baseline import prob_fiction

    consistent = (valid["status"] == "consistent").to_numpy()
    rows = []
    for name, train in training_sets(issues).items():
        pipe = fit_baseline(train, settings)
        pred = labels_from_proba(prob_fiction(pipe, valid["title"].tolist()))
        rows.append({"strategy": name, "training titles": len(train),
                     "fiction share": float((train["label"] == LABELS[0]).mean()),
                     "valid macro-F1 (consistent)": macro_f1(valid["label"][consistent],
                                                             pred[consistent]),
                     "valid macro-F1 (all)": macro_f1(valid["label"], pred)})
    return pd.DataFrame(rows).set_index("strategy")


def choose_strategy(table: pd.DataFrame) -> str:
    """The strategy with the best validation macro-F1 on consistent records (ties: listed first)."""
    return str(table["valid macro-F1 (consistent)"].idxmax())

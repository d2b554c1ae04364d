"""The Zooniverse crowdsourcing export: who classified what, what they answered, and how often
volunteers agreed with each other.

The export (``annotations_2021_08_31.csv``, read by :func:`blgenre.data.load_annotations`) has
one row per *classification*: one volunteer's answers about one Zooniverse *subject* (the image
of a digitised book's title page), with the catalogue metadata of the BL record that the subject
was linked to. Volunteers are pseudonymised (``user_name`` is a number).
"""

from __future__ import annotations

import ast
import re
from itertools import combinations

import numpy as np
import pandas as pd

from blgenre.data import normalise_label, primary_language

#: The four answers the task offered, in the order the book shows them.
ANSWERS = ("Fiction", "Non-fiction", "both", "can't tell")


def _retired_subject(value: str) -> str:
    """The ``subject_id`` inside the export's ``retired`` column (a Python dict as text)."""
    text = str(value).strip()
    if not text:
        return ""
    try:
        info = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return ""
    return str(info.get("subject_id", "")) if isinstance(info, dict) else ""


def prepare(annotations: pd.DataFrame) -> pd.DataFrame:
    """Tidy columns for analysis: ``answer``, ``record_id``, ``user``, ``language``, ``created``.

    ``answer`` is the genre answer normalised to one of :data:`ANSWERS`; ``language`` is the
    first language of the MARC record; ``retired_subject`` is the Zooniverse subject whose
    retirement information the export attached to the row.
    """
    df = annotations.copy()
    out = pd.DataFrame({
        "classification_id": df["classification_id"].str.strip(),
        "user": df["user_name"].str.strip(),
        "subject_id": df["subject_ids"].str.strip(),
        "record_id": df["BL record ID"].str.strip(),
        "title": df["title"],
        "answer": df["genre"].map(normalise_label),
    })
    if "Languages from MARC record" in df.columns:
        out["language"] = df["Languages from MARC record"].map(primary_language)
    if "created_at" in df.columns:
        out["created"] = pd.to_datetime(df["created_at"].str.replace(" UTC", "", regex=False),
                                        errors="coerce", utc=True)
    if "retired" in df.columns:
        out["retired_subject"] = df["retired"].map(_retired_subject)
    return out


def answer_counts(prepared: pd.DataFrame) -> pd.DataFrame:
    """Number and share of each genre answer, in :data:`ANSWERS` order."""
    counts = prepared["answer"].value_counts().reindex(ANSWERS, fill_value=0)
    return pd.DataFrame({"classifications": counts, "share": counts / counts.sum()})


def per_record(prepared: pd.DataFrame) -> pd.DataFrame:
    """One row per BL record: classifications, distinct volunteers, distinct subjects, answers."""
    g = prepared.groupby("record_id")
    out = pd.DataFrame({
        "classifications": g.size(),
        "volunteers": g["user"].nunique(),
        "subjects": g["subject_id"].nunique(),
        "distinct_answers": g["answer"].nunique(),
    })
    if "language" in prepared.columns:
        out["language"] = g["language"].first()
    return out


def volunteer_summary(prepared: pd.DataFrame) -> pd.DataFrame:
    """Classifications per volunteer, most active first, with the cumulative share of all work."""
    counts = prepared["user"].value_counts()
    out = pd.DataFrame({"classifications": counts})
    out["share"] = out["classifications"] / out["classifications"].sum()
    out["cumulative_share"] = out["share"].cumsum()
    out.index.name = "volunteer"
    return out


def gini(values) -> float:
    """Gini coefficient of non-negative ``values``: 0 = everyone did the same, near 1 = one did all."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * x).sum()) / (n * x.sum()) - (n + 1) / n)


def concentration(prepared: pd.DataFrame) -> dict:
    """How concentrated the work was: volunteers, top-1 / top-5 shares, median, Gini."""
    vs = volunteer_summary(prepared)
    return {
        "volunteers": int(len(vs)),
        "classifications": int(vs["classifications"].sum()),
        "top1_share": float(vs["share"].iloc[0]),
        "top5_share": float(vs["share"].iloc[:5].sum()),
        "median": float(vs["classifications"].median()),
        "single_classification_volunteers": int((vs["classifications"] == 1).sum()),
        "gini": gini(vs["classifications"]),
    }


def _category_counts(frame: pd.DataFrame, item: str, answer: str) -> pd.DataFrame:
    """Items x categories matrix of answer counts, for items with at least two answers."""
    counts = frame.groupby([item, answer]).size().unstack(fill_value=0)
    return counts[counts.sum(axis=1) >= 2]


def pairwise_agreement(frame: pd.DataFrame, item: str = "record_id",
                       answer: str = "answer") -> dict:
    """Share of agreeing pairs of answers given to the same item.

    Every pair of classifications of an item counts once (``pairs``, ``agreeing_pairs``,
    ``pair_agreement``); ``item_agreement`` first averages within each item, so that items with
    many classifications do not dominate; ``unanimous`` is the share of items on which every
    answer was the same. Only items with two or more answers take part.
    """
    counts = _category_counts(frame, item, answer)
    n = counts.sum(axis=1).to_numpy(dtype=float)
    pairs = n * (n - 1) / 2
    agree = (counts.to_numpy(dtype=float) * (counts.to_numpy(dtype=float) - 1) / 2).sum(axis=1)
    return {
        "items": int(len(counts)),
        "pairs": int(pairs.sum()),
        "agreeing_pairs": int(agree.sum()),
        "pair_agreement": float(agree.sum() / pairs.sum()) if pairs.sum() else float("nan"),
        "item_agreement": float(np.mean(agree / pairs)) if len(pairs) else float("nan"),
        "unanimous": float(np.mean(agree == pairs)) if len(pairs) else float("nan"),
    }


def fleiss_kappa(frame: pd.DataFrame, item: str = "record_id", answer: str = "answer") -> float:
    """Fleiss' kappa for items rated by a varying number of raters (two or more each).

    Observed agreement is the mean over items of the share of agreeing rater pairs; chance
    agreement comes from the pooled share of each category over all answers. With the same
    number of raters for every item this is exactly Fleiss (1971).
    """
    counts = _category_counts(frame, item, answer).to_numpy(dtype=float)
    if len(counts) == 0:
        return float("nan")
    n = counts.sum(axis=1)
    p_items = ((counts * (counts - 1)).sum(axis=1)) / (n * (n - 1))
    p_bar = p_items.mean()
    p_cat = counts.sum(axis=0) / counts.sum()
    p_e = float((p_cat ** 2).sum())
    if p_e == 1.0:
        return float("nan")  # every answer in one category: kappa is undefined
    return float((p_bar - p_e) / (1 - p_e))


def agreement_by(frame: pd.DataFrame, by: str, item: str = "record_id",
                 answer: str = "answer") -> pd.DataFrame:
    """Pairwise agreement and Fleiss' kappa for each value of ``by`` (e.g. language)."""
    rows = {}
    for key, g in frame.groupby(by):
        pa = pairwise_agreement(g, item, answer)
        if pa["items"] == 0:
            continue
        rows[key] = {"items": pa["items"], "pairs": pa["pairs"],
                     "pair_agreement": pa["pair_agreement"], "unanimous": pa["unanimous"],
                     "fleiss_kappa": fleiss_kappa(g, item, answer)}
    return pd.DataFrame(rows).T


def disagreements(prepared: pd.DataFrame, limit: int = 10) -> pd.DataFrame:
    """Records whose volunteers gave different answers, with the answers, for reading."""
    g = prepared.groupby("record_id")
    mixed = g["answer"].nunique()
    ids = mixed[mixed > 1].index
    out = (prepared[prepared["record_id"].isin(ids)]
           .groupby("record_id")
           .agg(title=("title", "first"),
                answers=("answer", lambda s: ", ".join(f"{k} ×{v}"
                                                       for k, v in s.value_counts().items()))))
    return out.head(limit)


def subject_check(prepared: pd.DataFrame) -> pd.DataFrame:
    """Does the classification's subject match the subject the export's metadata describes?

    Per number of classifications of a record: the share of rows whose ``subject_id`` is the
    ``retired_subject`` attached to the row.
    """
    df = prepared.assign(
        n=prepared.groupby("record_id")["record_id"].transform("size"),
        same_subject=prepared["subject_id"] == prepared["retired_subject"],
    )
    return df.groupby("n").agg(rows=("same_subject", "size"),
                               same_subject=("same_subject", "mean"))


def coverage(prepared: pd.DataFrame, raw: pd.DataFrame) -> dict:
    """How the export relates to the published catalogue file (``train_valid.csv``).

    Matches classifications by id; reports how many are in the catalogue file and the
    volunteers whose classifications are mostly missing from it.
    """
    ids = set(raw["classification_id"].str.strip().str.replace(r"\.0$", "", regex=True))
    inside = prepared["classification_id"].isin(ids)
    by_user = prepared.assign(inside=inside).groupby("user")["inside"].agg(["size", "mean"])
    missing_users = by_user[(by_user["mean"] < 0.5) & (by_user["size"] >= 10)]
    return {
        "in_file": int(inside.sum()),
        "not_in_file": int((~inside).sum()),
        "not_in_file_fiction_or_non": int((~inside & prepared["answer"].isin(ANSWERS[:2])).sum()),
        "not_in_file_both_or_cant": int((~inside & prepared["answer"].isin(ANSWERS[2:])).sum()),
        "users_mostly_missing": {str(u): int(r["size"]) for u, r in missing_users.iterrows()},
        "missing_from_those_users": int((~inside & prepared["user"].isin(missing_users.index)).sum()),
    }


def pairs_example(answers: list[str]) -> list[tuple[str, str]]:
    """All unordered pairs of a list of answers (a helper the chapter uses to explain agreement)."""
    return list(combinations(answers, 2))


def monthly(prepared: pd.DataFrame) -> pd.Series:
    """Classifications per calendar month (``YYYY-MM``), months without any included as 0."""
    months = prepared["created"].dt.strftime("%Y-%m")
    counts = months.value_counts().sort_index()
    full = pd.period_range(counts.index[0], counts.index[-1], freq="M").strftime("%Y-%m")
    return counts.reindex(full, fill_value=0).rename("classifications")


def _fast_terms(value: str) -> list[str]:
    """Headings (``$a`` subfields) in a MARC 655 field as typed, e.g. ``'655 7 $aPoetry$2fast'``."""
    terms = re.findall(r"[$ǂ]a([^$ǂ\n]+)", str(value))
    return sorted({t.strip().rstrip(".") for t in terms if t.strip()})


def genre_terms(annotations: pd.DataFrame, top: int = 12) -> pd.DataFrame:
    """FAST genre terms the volunteers added, against their genre answer (most frequent first).

    Classifications without any term count under ``(no term)``; a classification with several
    terms counts once under each.
    """
    terms = annotations["FAST_genre_terms"].map(_fast_terms).map(lambda t: t or ["(no term)"])
    frame = pd.DataFrame({"term": terms, "answer": annotations["genre"].map(normalise_label)})
    frame = frame.explode("term")
    table = pd.crosstab(frame["term"], frame["answer"]).reindex(columns=list(ANSWERS),
                                                               fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.sort_values("total", ascending=False).head(top)


def identical_answer_sets(annotations: pd.DataFrame, columns: tuple[str, ...]) -> dict:
    """Among records with several classifications: how many carry identical answers in
    every one of ``columns`` (see :func:`blgenre.data.audit.identical_answers`)."""
    from blgenre.data.audit import identical_answers

    frame = annotations.assign(record_id=annotations["BL record ID"].str.strip())
    return identical_answers(frame, "record_id", columns)

"""Summaries of the cleaned books (one row per BL record) for the chapter *Exploring the data*."""

from __future__ import annotations

import pandas as pd

from blgenre.data import LABELS

FICTION = LABELS[0]


def overview(books: pd.DataFrame) -> dict:
    """Headline numbers: books, share of Fiction, languages, years covered, title lengths."""
    years = books["year"].dropna()
    return {
        "books": int(len(books)),
        "fiction": int((books["label"] == FICTION).sum()),
        "fiction_share": float((books["label"] == FICTION).mean()),
        "languages": int(books["language"].nunique()),
        "english_share": float((books["language"] == "English").mean()),
        "multilingual": int(books["multilingual"].sum()),
        "year_min": int(years.min()),
        "year_max": int(years.max()),
        "year_median": int(years.median()),
        "no_year": int(books["year"].isna().sum()),
        "median_title_words": float(books["title_words"].median()),
        "median_title_chars": float(books["title_chars"].median()),
        "max_title_chars": int(books["title_chars"].max()),
    }


def pooled(books: pd.DataFrame, by: str, min_books: int, other: str = "other") -> pd.Series:
    """Column ``by`` as text, with values that have fewer than ``min_books`` books set to ``other``."""
    keys = books[by].astype(str)
    counts = keys.map(keys.value_counts())
    return keys.where(counts >= min_books, other)


def label_table(books: pd.DataFrame, by: str, min_books: int = 0,
                other: str = "other") -> pd.DataFrame:
    """Books, Fiction, Non-fiction and Fiction share per value of ``by``, largest first.

    Values with fewer than ``min_books`` books are pooled into ``other``.
    """
    keys = pooled(books, by, min_books, other) if min_books else books[by].astype(str)
    table = pd.crosstab(keys, books["label"]).reindex(columns=list(LABELS), fill_value=0)
    table["books"] = table.sum(axis=1)
    table["fiction share"] = table[FICTION] / table["books"]
    table.index.name = by
    order = table["books"].sort_values(ascending=False).index
    if other in order:  # the pooled row goes last
        order = [k for k in order if k != other] + [other]
    return table.loc[order, ["books", *LABELS, "fiction share"]]


def decade_table(books: pd.DataFrame) -> pd.DataFrame:
    """:func:`label_table` by decade, in time order (``unknown`` last)."""
    table = label_table(books, "decade")
    known = sorted(k for k in table.index if k != "unknown")
    return table.loc[known + [k for k in table.index if k == "unknown"]]


def title_lengths(books: pd.DataFrame) -> pd.DataFrame:
    """Median and quartiles of title length (words) per label."""
    return (books.groupby("label")["title_words"]
            .describe()[["count", "25%", "50%", "75%", "max"]]
            .rename(columns={"50%": "median"}))


def split_table(split: pd.DataFrame) -> pd.DataFrame:
    """Books per part of the split and label, with the Fiction share."""
    table = pd.crosstab(split["split"], split["label"]).reindex(
        index=["train", "valid", "test"], columns=list(LABELS), fill_value=0)
    table["books"] = table.sum(axis=1)
    table["fiction share"] = table[FICTION] / table["books"]
    return table


def examples(books: pd.DataFrame, n: int = 3, seed: int = 0, by: str = "label") -> pd.DataFrame:
    """``n`` random titles per value of ``by`` (default: per label), for reading."""
    parts = [g.sample(min(n, len(g)), random_state=seed) for _, g in books.groupby(by)]
    return pd.concat(parts)[["title", "label", "language", "year"]].reset_index(drop=True)


#: Words with which a title announces its own genre (English only; a rough cue, not a rule).
GENRE_WORDS = r"\b(?:novel|novels|tale|tales|story|stories|romance|poems?|verses?|drama|comedy|tragedy)\b"


def title_cues(books: pd.DataFrame) -> pd.DataFrame:
    """Per label: share of titles with a cataloguer's note in square brackets, with a genre
    word ("novel", "tale", "poems", ...), and with both a genre word inside brackets."""
    titles = books["title"].str.lower()
    brackets = titles.str.findall(r"\[[^\]]*\]").str.join(" ")
    frame = pd.DataFrame({
        "label": books["label"],
        "bracketed note": titles.str.contains(r"\[", regex=True),
        "genre word": titles.str.contains(GENRE_WORDS, regex=True),
        "genre word in brackets": brackets.str.contains(GENRE_WORDS, regex=True),
    })
    out = frame.groupby("label").mean()
    out.insert(0, "books", frame.groupby("label").size())
    return out


def cue_examples(books: pd.DataFrame, n: int = 5, seed: int = 0) -> pd.DataFrame:
    """Fiction titles whose genre is announced only inside a cataloguer's square brackets."""
    titles = books["title"].str.lower()
    outside = titles.str.replace(r"\[[^\]]*\]", " ", regex=True)
    brackets = titles.str.findall(r"\[[^\]]*\]").str.join(" ")
    mask = (brackets.str.contains(GENRE_WORDS, regex=True)
            & ~outside.str.contains(GENRE_WORDS, regex=True)
            & (books["label"] == LABELS[0]))
    picked = books[mask]
    return picked.sample(min(n, len(picked)), random_state=seed)[["title", "label", "year"]]

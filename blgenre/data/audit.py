"""Data quality audit of the annotated catalogue rows (``train_valid.csv``).

Four questions, each answered by a function the audit chapter calls:

1. How often does a BL record repeat, and are its repeated rows independent answers?
   (:func:`rows_per_record`, :func:`identical_answers`)
2. How much would a split that ignores repeated titles leak? (:func:`leakage_table`)
3. Do labels conflict within a record or a title? (:func:`label_conflicts`)
4. Do the volunteers' answers describe the book in the catalogue? The annotator's date, place
   and country of publication are compared with the catalogue's (:func:`row_checks`,
   :func:`check_summary`, :func:`record_flags`).

Question 4 is a lead to test, not a settled fact: disagreement can also come from reprints,
spelling variants or catalogue errors, and the functions say what they compare.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre import data
from blgenre.paths import artifacts_dir
from blgenre.seed import SEED

#: Answer columns a volunteer typed or chose; identical values across rows of one record in all
#: of them (free text included) mean the rows are copies of one answer set.
ANSWER_COLUMNS = (
    "annotator_date_pub", "annotator_publisher", "annotator_place_pub", "annotator_country",
    "annotator_FAST_subject_terms", "annotator_FAST_genre_terms", "annotator_comments",
    "annotator_genre",
)
#: Years apart that still count as the same date (a reprint, a title page dated a year later).
DATE_TOLERANCE = 1

#: MARC 21 country codes (https://www.loc.gov/marc/countries/) under which a book in a catalogue
#: language is plausibly published. US states end in ``u`` and Canadian provinces in ``c``;
#: those are handled by :func:`country_plausible`. Languages not listed are not checked.
LANGUAGE_COUNTRIES = {
    "English": {"enk", "stk", "wlk", "nik", "xxk", "ie", "xxu", "xxc", "at", "nz", "ii", "sa",
                "cc", "jm", "bb", "si", "mau", "ce"},
    "Danish": {"dk", "no", "ic"},
    "Swedish": {"sw", "fi"},
    "Dutch": {"ne", "be", "sa"},
    "German": {"gw", "gx", "au", "sz", "lu"},
    "Hungarian": {"hu", "au"},
    "Italian": {"it", "sz", "vc"},
    "Spanish": {"sp", "mx", "ag", "cl", "cu", "pe", "ck", "ve", "uy", "xxu"},
    "French": {"fr", "be", "sz", "xxc"},
}
_ANGLO_SUFFIX = ("u", "c")  # MARC codes of US states (nyu) and Canadian provinces (onc)


# ---------------------------------------------------------------------------------------------
# 1. Repeated rows


def with_record(raw: pd.DataFrame) -> pd.DataFrame:
    """``raw`` plus ``record_id``, ``language`` (first catalogue language), ``n_rows``, ``label``."""
    df = raw.copy()
    df["record_id"] = df["BL record ID"].str.strip()
    df["language"] = df["Languages"].map(data.primary_language)
    df["n_rows"] = df.groupby("record_id")["record_id"].transform("size").astype(int)
    df["label"] = df["annotator_genre"].map(data.normalise_label)
    return df


def rows_per_record(raw: pd.DataFrame) -> pd.DataFrame:
    """Records by language (rows) and by how many rows each has (columns)."""
    df = with_record(raw).drop_duplicates("record_id")
    table = pd.crosstab(df["language"], df["n_rows"], margins=True, margins_name="all")
    table.columns.name = "rows per record"
    return table.sort_values("all", ascending=False)


def identical_answers(frame: pd.DataFrame, record: str = "record_id",
                      columns: tuple[str, ...] = ANSWER_COLUMNS) -> dict:
    """Among records with several rows: how many have the same value in every answer column.

    Independent volunteers rarely type the same free text (publisher, comments, subject terms)
    character for character; if every row of a record is identical, the rows are copies.
    """
    cols = [c for c in columns if c in frame.columns]
    sizes = frame.groupby(record).size()
    multi = sizes[sizes > 1].index
    sub = frame[frame[record].isin(multi)]
    joined = sub[cols].astype(str).agg("\x1f".join, axis=1)
    distinct = joined.groupby(sub[record]).nunique()
    return {
        "records_with_several_rows": int(len(multi)),
        "identical_records": int((distinct == 1).sum()),
        "identical_share": float((distinct == 1).mean()) if len(multi) else float("nan"),
        "columns": cols,
    }


# ---------------------------------------------------------------------------------------------
# 2. Leakage


def _leak_counts(train_keys: pd.Series, test_keys: pd.Series) -> tuple[int, int]:
    """Test items whose key occurs in train, and distinct such keys."""
    seen = set(train_keys)
    hit = test_keys.isin(seen)
    return int(hit.sum()), int(test_keys[hit].nunique())


def leakage_table(raw: pd.DataFrame, split: pd.DataFrame, test_fraction: float = 0.15,
                  seed: int = SEED) -> pd.DataFrame:
    """How many test items also occur in training, for three ways of splitting.

    * *random rows*: shuffle the catalogue rows and hold out ``test_fraction`` of them;
    * *random records*: one row per record (as the book keeps), shuffled, not grouped by title;
    * *the book's split*: :func:`blgenre.data.split.make_split`, grouped by record and title.

    ``split`` is the book's split (``blgenre.data.split.load_split()``); the two naive splits use
    the same test fraction.
    """
    rng = np.random.default_rng(seed)
    rows = with_record(raw)
    rows = rows[rows["label"].isin(data.LABELS)].assign(
        title_key=lambda d: d["Title"].map(data.title_key))
    order = rng.permutation(len(rows))
    n_test = int(round(test_fraction * len(rows)))
    test, train = rows.iloc[order[:n_test]], rows.iloc[order[n_test:]]

    books = split.assign(title_key=split["title"].map(data.title_key))
    border = rng.permutation(len(books))
    b_test = books.iloc[border[:int(round(test_fraction * len(books)))]]
    b_train = books.iloc[border[int(round(test_fraction * len(books))):]]

    g_test, g_train = books[books["split"] == "test"], books[books["split"] != "test"]

    out = []
    for name, tr, te in (("random rows", train, test), ("random records", b_train, b_test),
                         ("the book's grouped split", g_train, g_test)):
        title_hits, _ = _leak_counts(tr["title_key"], te["title_key"])
        record_hits, _ = _leak_counts(tr["record_id"], te["record_id"])
        out.append({"split": name, "test items": len(te),
                    "test items whose title is in training": title_hits,
                    "share": title_hits / len(te),
                    "test items whose record is in training": record_hits})
    return pd.DataFrame(out).set_index("split")


def duplicate_titles(books: pd.DataFrame) -> dict:
    """Distinct records that share a title (compared by :func:`blgenre.data.title_key`)."""
    keys = books["title"].map(data.title_key)
    counts = keys.value_counts()
    shared = counts[counts > 1]
    return {"books": int(len(books)), "distinct_titles": int(len(counts)),
            "titles_on_several_records": int(len(shared)),
            "records_sharing_a_title": int(shared.sum())}


# ---------------------------------------------------------------------------------------------
# 3. Label consistency


def label_conflicts(raw: pd.DataFrame) -> dict:
    """Records and titles whose rows carry both Fiction and Non-fiction."""
    df = with_record(raw)
    df = df[df["label"].isin(data.LABELS)].assign(title_key=lambda d: d["Title"].map(data.title_key))
    by_record = df.groupby("record_id")["label"].nunique()
    title_books = df.drop_duplicates("record_id")
    by_title = title_books.groupby("title_key")["label"].nunique()
    conflict_titles = by_title[by_title > 1].index
    examples = (title_books[title_books["title_key"].isin(conflict_titles)]
                .sort_values(["title_key", "label"])[["record_id", "Title", "label", "language",
                                                       "Date of publication"]])
    return {"records_with_conflicts": int((by_record > 1).sum()),
            "titles_on_several_records": int((title_books["title_key"].value_counts() > 1).sum()),
            "titles_with_conflicts": int(len(conflict_titles)),
            "examples": examples.reset_index(drop=True)}


# ---------------------------------------------------------------------------------------------
# 4. Do the answers describe the catalogued book?


def _fold(text: str) -> str:
    """Lowercase ASCII letters only: 'Kjøbenhavn' -> 'kjobenhavn', 'Bruxelles.' -> 'bruxelles'."""
    text = str(text).lower().replace("ø", "o").replace("æ", "ae").replace("ß", "ss")
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return re.sub(r"[^a-z]+", " ", text).strip()


def places(value: str) -> set[str]:
    """Place names in a field such as ``'Edinburgh ; London'`` or ``'London\\nNew York'``."""
    parts = re.split(r"[;\n,/&]|\band\b", str(value))
    out = {_fold(p) for p in parts}
    return {p for p in out if p and p not in {"none", "s l", "sl", "n p"}}


def place_match(catalogue: str, annotator: str) -> float:
    """1.0 if any place matches (one name contained in the other), 0.0 if none, NaN if unknown."""
    a, b = places(catalogue), places(annotator)
    if not a or not b:
        return float("nan")
    return float(any(x in y or y in x for x in a for y in b))


def country_codes(value: str) -> set[str]:
    """MARC country codes in an annotator's answer (several may be given, one per line)."""
    codes = {c.strip().lower() for c in re.split(r"[\s;,]+|\band\b", str(value))}
    return {c for c in codes if c and c != "none" and re.fullmatch(r"[a-z]{2,3}", c)}


def country_plausible(languages: str, codes: set[str]) -> float:
    """1.0 if some code is a plausible country for some catalogue language; NaN if untestable."""
    langs = [x.strip() for x in str(languages).split(";") if x.strip()]
    checked = [lang for lang in langs if lang in LANGUAGE_COUNTRIES]
    if not codes or not checked:
        return float("nan")
    for lang in checked:
        allowed = LANGUAGE_COUNTRIES[lang]
        for code in codes:
            if code in allowed:
                return 1.0
            if lang == "English" and len(code) == 3 and code.endswith(_ANGLO_SUFFIX):
                return 1.0
    return 0.0


def annotator_year(row: pd.Series) -> float:
    """The annotator's year: the normalised date if it has a year, else the transcribed date."""
    year = data.parse_year(row.get("annotator_normalised_date_pub", ""))
    if np.isnan(year):
        year = data.parse_year(row.get("annotator_date_pub", ""))
    return year


def row_checks(raw: pd.DataFrame) -> pd.DataFrame:
    """One row per catalogue row: the catalogue's and the annotator's date, place and country.

    Columns: ``record_id``, ``language``, ``english`` (first language English), ``n_rows``,
    ``label``, ``catalogue_year``, ``annotator_year``, ``year_diff`` (annotator - catalogue),
    ``date_agrees`` (within :data:`DATE_TOLERANCE` years; NaN if either year is missing),
    ``place_matches``, ``country_plausible`` (NaN where untestable) and ``title_same``
    (annotator title equals the catalogue title after folding case and punctuation).
    """
    df = with_record(raw)
    out = df[["record_id", "language", "n_rows", "label"]].copy()
    out["languages"] = df["Languages"].str.strip()
    out["english"] = out["language"] == "English"
    out["catalogue_year"] = df["Date of publication"].map(data.parse_year)
    out["annotator_year"] = df.apply(annotator_year, axis=1)
    out["year_diff"] = out["annotator_year"] - out["catalogue_year"]
    out["date_agrees"] = np.where(out["year_diff"].isna(), np.nan,
                                  (out["year_diff"].abs() <= DATE_TOLERANCE).astype(float))
    out["place_matches"] = [place_match(c, a) for c, a in
                            zip(df["Place of publication"], df["annotator_place_pub"], strict=True)]
    out["annotator_country"] = df["annotator_country"].map(
        lambda v: " ".join(sorted(country_codes(v))))
    out["country_plausible"] = [country_plausible(lang, country_codes(c)) for lang, c in
                                zip(df["Languages"], df["annotator_country"], strict=True)]
    if "annotator_title" in df.columns:
        out["title_same"] = (df["annotator_title"].map(data.title_key)
                             == df["Title"].map(data.title_key))
    return out


def check_summary(checks: pd.DataFrame, by: str = "language", min_rows: int = 1) -> pd.DataFrame:
    """Per group: rows, rows with both dates, and the share that agree on date, place, country."""
    g = checks.groupby(by)
    out = pd.DataFrame({
        "rows": g.size(),
        "records": g["record_id"].nunique(),
        "rows with both years": g["date_agrees"].count(),
        "date agrees (±1 y)": g["date_agrees"].mean(),
        "median |years apart|": g["year_diff"].agg(lambda s: s.abs().median()),
        "place matches": g["place_matches"].mean(),
        "country plausible": g["country_plausible"].mean(),
    })
    return out[out["rows"] >= min_rows].sort_values("rows", ascending=False)


def chance_date_agreement(checks: pd.DataFrame, n: int = 20, seed: int = 0) -> float:
    """Date agreement expected if annotator years were paired with *random* catalogue years.

    Shuffles the annotator years among the rows ``n`` times and averages the agreement: the
    level a completely wrong pairing of answers and books would reach by chance.
    """
    rng = np.random.default_rng(seed)
    both = checks.dropna(subset=["catalogue_year", "annotator_year"])
    cat, ann = both["catalogue_year"].to_numpy(), both["annotator_year"].to_numpy()
    shares = [float((np.abs(rng.permutation(ann) - cat) <= DATE_TOLERANCE).mean())
              for _ in range(n)]
    return float(np.mean(shares))


def record_flags(checks: pd.DataFrame) -> pd.DataFrame:
    """One row per record with the audit's verdict in ``status``.

    * ``suspect``: the annotator's date is more than a year from the catalogue's, *and* an
      independent field disagrees too (the place does not match or the country is implausible
      for the book's language);
    * ``date only``: the date disagrees but place and country do not contradict the catalogue;
    * ``consistent``: the date agrees;
    * ``untestable``: the annotator gave no date (or the catalogue has none).

    A record's rows are copies of one answer set (see :func:`identical_answers`), so the first
    row decides.
    """
    first = checks.drop_duplicates("record_id").set_index("record_id")
    other_disagrees = (first["place_matches"] == 0) | (first["country_plausible"] == 0)
    status = np.select(
        [first["date_agrees"].isna(), first["date_agrees"] == 1, other_disagrees],
        ["untestable", "consistent", "suspect"], default="date only")
    cols = ["language", "languages", "n_rows", "label", "catalogue_year", "annotator_year",
            "place_matches", "country_plausible"]
    return first[cols].assign(status=status)


def flags_path() -> Path:
    """Where :func:`write_record_flags` saves the verdicts for later chapters."""
    return artifacts_dir("audit") / "record_flags.csv"


def write_record_flags(flags: pd.DataFrame) -> Path:
    """Save the per-record verdicts (``record_id``, ``status``, ...) as a CSV and return the path."""
    path = flags_path()
    flags.reset_index().to_csv(path, index=False)
    return path


def load_record_flags() -> pd.DataFrame | None:
    """The saved verdicts (``record_id`` as text), or ``None`` if the audit has not run."""
    path = flags_path()
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"record_id": str}, keep_default_na=False,
                       na_values={"catalogue_year": [""], "annotator_year": [""]})


def title_keyword_check(books: pd.DataFrame, pattern: str, name: str) -> pd.DataFrame:
    """Share labelled Fiction among titles matching ``pattern``, English vs other languages.

    A plausibility check of the labels that does not use the annotators' other answers: titles
    that announce a history should rarely be fiction, in any language.
    """
    hit = books[books["title"].str.contains(pattern, case=False, regex=True)]
    grp = np.where(hit["language"] == "English", "English", "other languages")
    out = hit.groupby(grp)["label"].agg(
        titles="size", fiction=lambda s: int((s == data.LABELS[0]).sum()))
    out["fiction share"] = out["fiction"] / out["titles"]
    out.index.name = name
    return out


def scores_by_status(predictions: pd.DataFrame, flags: pd.DataFrame | None = None) -> pd.DataFrame:
    """A model's test results separately for each audit verdict (and for English books).

    ``predictions`` needs ``record_id``, ``label`` and ``pred`` columns, as in the CSV that
    :func:`blgenre.evaluation.evaluate.evaluate` writes (``artifacts/predictions/<model>.csv``); ``flags``
    defaults to the saved verdicts (:func:`load_record_flags`), computed from the data if the
    audit chapter has not run.
    """
    from blgenre.evaluation.evaluate import grouped_metrics

    if flags is None:
        flags = load_record_flags()
    if flags is None:
        raw, _ = data.load_raw()
        flags = record_flags(row_checks(raw)).reset_index()
    flags = flags.reset_index() if "record_id" not in flags.columns else flags
    frame = predictions.assign(record_id=predictions["record_id"].astype(str)).merge(
        flags[["record_id", "status"]], on="record_id", how="left")
    frame["status"] = frame["status"].fillna("not audited")
    if "language" in frame.columns:
        english = frame["language"] == "English"
        frame["group"] = np.where(english, "English, ", "other languages, ") + frame["status"]
    table = pd.DataFrame(grouped_metrics(frame, "status")).T
    if "group" in frame.columns:
        table = pd.concat([table, pd.DataFrame(grouped_metrics(frame, "group")).T])
    table.index.name = "records"
    return table

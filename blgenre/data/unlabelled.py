"""The unlabelled collection: two real samples of the BL's digitised 19th-century books.

Serves the chapters *Weak supervision* and *Noisy labels*, and the models that learn from the
collection. Two files, found like the labelled data (``BLGENRE_DATA``, then the cache folder):

- ``bl_flickr_books.csv``: the books whose illustrations the BL put on Flickr Commons (BL Labs,
  ``BL-Labs/imagedirectory``; Unlicense / public domain): id, title, author, publisher, place,
  date;
- ``bl_marc_sample.xml.gz``: MARC21-XML catalogue records (BL Labs,
  ``BL-Labs/sample_generator_datatools``; CC0), read with :mod:`blgenre.data.marc`.

Each file is checked against its published sha256 before it is used. :func:`unlabelled_pool`
merges them and removes every book that is already labelled: the labelled data's validation and
test books (by record id *and* by normalised title, :func:`blgenre.data.title_key`), so that no
held-out book leaks into weak labels or a language model's corpus, and the training books, whose
gold labels the models already have.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from blgenre import data
from blgenre.errors import DataError
from blgenre.integrity import sha256_file
from blgenre.paths import artifacts_dir


@dataclass(frozen=True)
class Source:
    """Where an unlabelled file comes from, what it may be used for, and how to check it."""

    name: str
    file: str
    sha256: str
    licence: str
    provenance: str
    rows: int  #: rows (books or records) in the published file


FLICKR = Source(
    name="flickr", file="bl_flickr_books.csv",
    sha256=data.KNOWN_SHA256["bl_flickr_books.csv"],
    licence="Public domain (Unlicense)",
    provenance=("British Library Labs, 'Flickr Commons manifests' (github.com/BL-Labs/imagedirectory, "
                "per-year *_small/_medium/_plates.tsv), one row per book"),
    rows=15_492,
)
MARC = Source(
    name="marc", file="bl_marc_sample.xml.gz",
    sha256=data.KNOWN_SHA256["bl_marc_sample.xml.gz"],
    licence="CC0 1.0",
    provenance=("British Library Labs, MARC21-XML records of 19th-century books "
                "(github.com/BL-Labs/sample_generator_datatools, data/19C_0000{1..9}.xml, merged)"),
    rows=8_970,
)
SOURCES = {s.name: s for s in (FLICKR, MARC)}
FLICKR_COLUMNS = ("book_identifier", "title", "date")
#: Columns of the pool frame.
POOL_COLUMNS = ("id", "title", "date", "year", "decade", "language", "language_guess", "place",
                "publisher", "source")

#: Very common short words of the collection's main languages, for a rough language guess where
#: the catalogue gives none (titles are short: this is a guess, and is labelled as one).
STOPWORDS = {
    "English": "the of and a an in on with by for to from its his their being or".split(),
    "German": "der die das und des den dem von mit ein eine einer zur zum im aus für über nach".split(),
    "French": "le la les de des du et un une en par pour sur dans au aux avec ou".split(),
    "Dutch": "het de een van en voor met door op uit der naar bij".split(),
    "Italian": "il lo la gli le di del della dei delle e con per da nel nella un una".split(),
    "Spanish": "el la los las de del y en por con para un una al sobre".split(),
    "Swedish": "och av för med på till om en ett den det från i".split(),
}
_WORD = re.compile(r"[^\W\d_]+")


def guess_language(title: str) -> str:
    """The language whose common words a title uses most, or ``'Unknown'`` (a rough guess)."""
    words = [w.lower() for w in _WORD.findall(str(title))]
    best, score = "Unknown", 0
    for language, stop in STOPWORDS.items():
        hits = sum(w in stop for w in words)
        if hits > score:
            best, score = language, hits
    return best


def locate_source(source: Source) -> tuple:
    """Path of a source file (``BLGENRE_DATA``, then the cache), after checking its sha256."""
    path = data.locate(source.file, download=False)
    actual = sha256_file(path)
    if actual != source.sha256:
        raise DataError(f"{path}: sha256 is {actual[:16]}..., expected {source.sha256[:16]}... "
                        f"({source.provenance}); the file is damaged or a different version")
    return path


def _decade(year: float) -> str:
    return "unknown" if pd.isna(year) else f"{int(year) // 10 * 10}s"


def _finish(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    frame = frame.assign(title=frame["title"].fillna("").map(data.normalise_title))
    frame = frame[frame["title"] != ""].copy()
    frame["year"] = pd.to_numeric(frame["year"], errors="coerce")
    frame["decade"] = frame["year"].map(_decade)
    frame["language_guess"] = frame["title"].map(guess_language)
    frame["source"] = source
    return frame.reindex(columns=list(POOL_COLUMNS)).reset_index(drop=True)


def load_flickr(path=None) -> pd.DataFrame:
    """The Flickr Commons books as a pool frame (no language in this file)."""
    path = path or locate_source(FLICKR)
    raw = data.read_csv_checked(path, FLICKR_COLUMNS)
    frame = pd.DataFrame({
        "id": raw["book_identifier"].str.strip(), "title": raw["title"], "date": raw["date"],
        "year": raw["date"].map(data.parse_year), "language": None,
        "place": raw.get("pubplace"), "publisher": raw.get("publisher"),
    })
    return _finish(frame, FLICKR.name)


def load_marc(path=None, cache: bool = True) -> pd.DataFrame:
    """The MARC records as a pool frame (parsed once, then read from ``artifacts/unlabelled``)."""
    from blgenre.data.marc import iter_records, record_fields

    path = path or locate_source(MARC)
    cached = artifacts_dir("unlabelled") / f"marc-{sha256_file(path)[:16]}.csv"
    if cache and cached.is_file():
        frame = pd.read_csv(cached, dtype=str, keep_default_na=False)
        return _finish(frame.replace("", None), MARC.name)
    frame = pd.DataFrame([record_fields(r) for r in iter_records(path)])
    if cache:
        frame.to_csv(cached, index=False)
    return _finish(frame, MARC.name)


def load_unlabelled() -> pd.DataFrame:
    """Both files, one row per book: MARC records first, Flickr books with the same id dropped."""
    both = pd.concat([load_marc(), load_flickr()], ignore_index=True)
    return both.drop_duplicates("id", keep="first").reset_index(drop=True)


def labelled_keys(parts: tuple[str, ...] = ("train", "valid", "test")) -> dict[str, set[str]]:
    """Record ids and normalised titles of the labelled books in ``parts`` of the split."""
    from blgenre.data import split

    books = split.load_split()
    books = books[books["split"].isin(parts)]
    return {"ids": set(books["record_id"].astype(str)),
            "titles": set(books["title"].map(data.title_key))}


def remove_labelled(frame: pd.DataFrame, title_col: str = "title",
                    id_col: str | None = "id") -> tuple[pd.DataFrame, dict]:
    """``frame`` without labelled books (by id and normalised title), and counts of what went.

    Validation and test books are removed so they cannot leak; training books because their
    gold labels are already used.
    """
    held_out = labelled_keys(("valid", "test"))
    train = labelled_keys(("train",))
    keys = frame[title_col].map(data.title_key)
    ids = frame[id_col].astype(str) if id_col else pd.Series("", index=frame.index)
    out_held = ids.isin(held_out["ids"]) | keys.isin(held_out["titles"])
    out_train = ~out_held & (ids.isin(train["ids"]) | keys.isin(train["titles"]))
    counts = {"validation or test book": int(out_held.sum()), "training book": int(out_train.sum())}
    return frame[~(out_held | out_train)].reset_index(drop=True), counts


def unlabelled_pool(report: bool = False):
    """The unlabelled pool: both files, minus labelled books, one row per normalised title.

    Columns: :data:`POOL_COLUMNS`. With ``report=True`` also returns a table of how many books
    each step removed.
    """
    books = load_unlabelled()
    steps = {"books in the two files": len(books)}
    pool, counts = remove_labelled(books)
    for reason, n in counts.items():
        steps[f"removed: {reason} (same id or title)"] = -n
    keys = pool["title"].map(data.title_key)
    dup = keys.duplicated() | (keys == "")
    steps["removed: the same title again"] = -int(dup.sum())
    pool = pool[~dup].reset_index(drop=True)
    steps["books in the pool"] = len(pool)
    if report:
        return pool, pd.Series(steps, name="books").to_frame()
    return pool


def provenance_table() -> pd.DataFrame:
    """One row per unlabelled file: rows, licence, provenance and sha256."""
    return pd.DataFrame([{"file": s.file, "rows": s.rows, "licence": s.licence,
                          "provenance": s.provenance, "sha256": s.sha256[:16] + "…"}
                         for s in SOURCES.values()]).set_index("file")


def coverage(pool: pd.DataFrame) -> pd.DataFrame:
    """Share of the pool with a known year, catalogue language and language guess, per source."""
    known = pool.assign(year_known=pool["year"].notna(), language_known=pool["language"].notna(),
                        guess_known=pool["language_guess"] != "Unknown")
    return known.groupby("source")[["year_known", "language_known", "guess_known"]].agg(
        lambda s: float(np.mean(s))).assign(books=pool["source"].value_counts())

"""Loading, validating and cleaning the British Library genre data.

The data set is *19th Century Books - metadata with additional crowdsourced annotations*
(British Library, DOI 10.23636/BKHQ-0312, CC0). The loader looks for it in this order:

1. the folder named by the ``BLGENRE_DATA`` environment variable;
2. the local cache folder (``BLGENRE_CACHE``, else the user cache folder ``blgenre``);
3. the British Library research repository, downloaded once through :mod:`pooch` into (2).

Every problem with a file (missing, empty, not UTF-8, not a CSV, missing columns) is raised as a
:class:`~blgenre.errors.DataError` that names the file and the problem.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from blgenre.errors import DataError, DataUnavailableError

#: The full catalogue with annotations (55,343 rows) in the British Library research repository.
BL_URL = "https://bl.iro.bl.uk/downloads/36c7cd20-c8a7-4495-acbe-469b9132c6b1?locale=en"
BL_DOI = "10.23636/BKHQ-0312"
#: File names the loader recognises: the annotated subset, then the full download.
ANNOTATED_FILE = "train_valid.csv"
FULL_FILE = "BL_19C_books_genre_annotations.csv"
ANNOTATIONS_FILE = "annotations_2021_08_31.csv"

#: Columns the book needs from the catalogue file.
REQUIRED_COLUMNS = (
    "BL record ID",
    "Title",
    "annotator_genre",
    "Date of publication",
    "Languages",
)
#: Columns the crowdsourcing chapter needs from the Zooniverse export.
ANNOTATION_COLUMNS = ("classification_id", "user_name", "subject_ids", "genre", "BL record ID", "title")

LABELS = ("Fiction", "Non-fiction")
HOW_TO_PROVIDE = (
    "Download the CSV from the British Library research repository "
    f"(https://doi.org/{BL_DOI}) and either set BLGENRE_DATA to the folder that holds it "
    f"(file name {ANNOTATED_FILE} or {FULL_FILE}) or copy it into the cache folder {{cache}}."
)


def cache_dir() -> Path:
    """The local cache folder for downloaded data."""
    env = os.environ.get("BLGENRE_CACHE")
    if env:
        return Path(env)
    import pooch

    return Path(pooch.os_cache("blgenre"))


def locate(filename: str = ANNOTATED_FILE, download: bool = True) -> Path:
    """Find a data file: ``BLGENRE_DATA``, then the cache, then (main data only) the download."""
    env = os.environ.get("BLGENRE_DATA")
    candidates = [filename] if filename != ANNOTATED_FILE else [ANNOTATED_FILE, FULL_FILE]
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir():
            raise DataError(f"BLGENRE_DATA={env}: no such folder")
        for name in candidates:
            if (folder / name).is_file():
                return folder / name
        raise DataError(f"BLGENRE_DATA={env}: the folder has no {' or '.join(candidates)}")
    cache = cache_dir()
    for name in candidates:
        if (cache / name).is_file():
            return cache / name
    if filename == ANNOTATED_FILE and download:
        return _download(cache)
    raise DataUnavailableError(
        f"{filename} was not found in BLGENRE_DATA (unset) or in the cache folder {cache}. "
        f"Set BLGENRE_DATA to a folder that holds {filename}."
    )


def _download(cache: Path) -> Path:
    """Fetch the full CSV from the British Library, failing fast with instructions offline."""
    import pooch

    try:
        path = pooch.retrieve(
            BL_URL,
            known_hash=None,  # the repository publishes no checksum; we record ours in the split
            fname=FULL_FILE,
            path=cache,
            downloader=pooch.HTTPDownloader(timeout=20, progressbar=False),
        )
    except Exception as exc:  # noqa: BLE001 - any network failure means the same to the reader
        raise DataUnavailableError(
            f"Could not download the British Library data ({type(exc).__name__}: {exc}). "
            + HOW_TO_PROVIDE.format(cache=cache)
        ) from None
    return Path(path)


def read_csv_checked(path: str | Path, required: tuple[str, ...] = REQUIRED_COLUMNS) -> pd.DataFrame:
    """Read a CSV as strings, raising :class:`DataError` naming the file and the problem."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataError(f"{path}: file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start}); "
            "it may be a binary file or another encoding. Save it as a UTF-8 CSV."
        ) from None
    if "\x00" in text:
        raise DataError(f"{path}: contains NUL bytes; this is not a CSV text file")
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError(f"{path}: not a valid CSV ({str(exc).strip()})") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        found = ", ".join(map(str, frame.columns[:8])) + (" ..." if len(frame.columns) > 8 else "")
        raise DataError(f"{path}: missing required column(s) {missing}; found columns: {found}")
    if frame.empty:
        raise DataError(f"{path}: has a header but no rows")
    return frame


@dataclass
class LoadReport:
    """What the cleaning step kept and dropped, for the book to show."""

    source: str
    rows_read: int = 0
    rows_not_annotated: int = 0
    dropped_labels: dict[str, int] = field(default_factory=dict)
    empty_titles: int = 0
    duplicate_rows: int = 0
    conflicting_records: int = 0
    books: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def normalise_label(value: str) -> str:
    """Map an annotator's answer to ``Fiction``, ``Non-fiction``, ``both``, ``can't tell`` or ``''``."""
    v = re.sub(r"\s+", " ", str(value)).strip().lower()
    if v == "fiction":
        return "Fiction"
    if v in {"non-fiction", "nonfiction", "non fiction", "not fiction"}:
        return "Non-fiction"
    if "both" in v:
        return "both"
    if "can't tell" in v or "cant tell" in v or "can’t tell" in v:
        return "can't tell"
    return v


def normalise_title(title: str) -> str:
    """Collapse whitespace and strip a title (case and punctuation are kept: they carry signal)."""
    return re.sub(r"\s+", " ", str(title)).strip()


def title_key(title: str) -> str:
    """Key that identifies 'the same title' for grouping: lowercase, letters and digits only."""
    return re.sub(r"[\W_]+", " ", str(title).lower()).strip()


_YEAR = re.compile(r"1[5-9]\d\d|20[0-2]\d")


def parse_year(value: str) -> float:
    """First plausible four-digit year in a catalogue date such as ``'1877'`` or ``'[1850?]'``."""
    match = _YEAR.search(str(value))
    return float(match.group()) if match else float("nan")


def primary_language(value: str) -> str:
    """First language of the catalogue's ``Languages`` field (``'Dutch ; English'`` -> Dutch)."""
    first = str(value).split(";")[0].strip()
    return first or "Unknown"


def _truthy(series: pd.Series) -> pd.Series:
    return series.str.strip().str.lower().isin({"true", "1", "yes"})


def clean(raw: pd.DataFrame, source: str = "") -> tuple[pd.DataFrame, LoadReport]:
    """One row per annotated book with a Fiction / Non-fiction label, plus a report of what was dropped."""
    report = LoadReport(source=source, rows_read=len(raw))
    df = raw
    if "annotated" in df.columns:
        keep = _truthy(df["annotated"])
        report.rows_not_annotated = int((~keep).sum())
        df = df[keep]
    labels = df["annotator_genre"].map(normalise_label)
    dropped = labels[~labels.isin(LABELS)].replace("", "missing").value_counts()
    report.dropped_labels = {str(k): int(v) for k, v in dropped.items()}
    df = df.assign(label=labels)[labels.isin(LABELS)]
    titles = df["Title"].map(normalise_title)
    report.empty_titles = int((titles == "").sum())
    df = df.assign(title=titles)[titles != ""]

    df = df.assign(record_id=df["BL record ID"].str.strip())
    counts = df.groupby("record_id")["label"].agg(["size", "nunique"])
    conflicting = counts.index[counts["nunique"] > 1]
    report.conflicting_records = len(conflicting)
    df = df[~df["record_id"].isin(conflicting)]
    before = len(df)
    books = df.drop_duplicates("record_id", keep="first").copy()
    report.duplicate_rows = before - len(books)
    books["n_rows"] = books["record_id"].map(counts["size"]).astype(int)

    books["year"] = books["Date of publication"].map(parse_year)
    books["decade"] = books["year"].map(lambda y: "unknown" if pd.isna(y) else f"{int(y) // 10 * 10}s")
    books["language"] = books["Languages"].map(primary_language)
    books["languages"] = books["Languages"].str.strip()
    books["multilingual"] = books["languages"].str.contains(";")
    books["title_chars"] = books["title"].str.len()
    books["title_words"] = books["title"].str.split().str.len()
    keep_cols = [
        "record_id", "title", "label", "year", "decade", "language", "languages", "multilingual",
        "title_chars", "title_words", "n_rows",
    ]
    extra = [c for c in ("Name", "Place of publication", "Publisher", "is_valid") if c in books.columns]
    if "is_valid" in books.columns:  # the original authors' train / validation flag
        books["is_valid"] = _truthy(books["is_valid"])
    books = books[keep_cols + extra].rename(
        columns={"Name": "name", "Place of publication": "place", "Publisher": "publisher"}
    )
    books = books.sort_values("record_id", kind="stable").reset_index(drop=True)
    report.books = len(books)
    return books, report


def load_raw(path: str | Path | None = None) -> tuple[pd.DataFrame, Path]:
    """The validated catalogue rows (before cleaning) and the file they came from."""
    path = Path(path) if path else locate()
    return read_csv_checked(path), path


def load_books(path: str | Path | None = None) -> tuple[pd.DataFrame, LoadReport]:
    """Locate, validate and clean the data: one row per annotated book."""
    raw, path = load_raw(path)
    return clean(raw, source=str(path))


def load_annotations(path: str | Path | None = None) -> pd.DataFrame:
    """The Zooniverse export, one row per classification (validated)."""
    path = Path(path) if path else locate(ANNOTATIONS_FILE, download=False)
    return read_csv_checked(path, ANNOTATION_COLUMNS)

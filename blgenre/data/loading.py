"""Loading, validating and cleaning the British Library genre data.

The data set is *19th Century Books - metadata with additional crowdsourced annotations*
(British Library, DOI 10.23636/BKHQ-0312, CC0). The loader looks for it in this order:

1. the folder named by the ``BLGENRE_DATA`` environment variable;
2. the local cache folder (``BLGENRE_CACHE``, else the user cache folder ``blgenre``);
3. the British Library research repository, downloaded once through :mod:`pooch` into (2).

A file found by name in (1) or (2) must have the sha256 the book knows for it
(:data:`KNOWN_SHA256`, like :mod:`pooch`'s ``known_hash``): a truncated or altered copy is
refused before it is read. A reader with a newer export sets ``BLGENRE_ALLOW_UNKNOWN_DATA=1`` (or
passes ``--allow-unknown-data`` to ``python -m blgenre split``); the load report then records
that the file was unknown, and its sha256, so the book can show the difference.

Every problem with a file (missing, empty, not UTF-8, not a CSV, missing columns, an unknown
sha256) is raised as a :class:`~blgenre.errors.DataError` that names the file and the problem.
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
from blgenre.integrity import sha256_file

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

#: sha256 of the British Library files this book was written with (the BL repository publishes
#: none). The full download (:data:`FULL_FILE`) is not listed: its hash is recorded, not checked.
KNOWN_SHA256 = {
    ANNOTATED_FILE: "dcea95fa10969ddd38433646cd088cff4556b7929149f3324a127f26c1efddcf",
    ANNOTATIONS_FILE: "727ad08b6a9c95c4c791fefa8229caf85f9f8b10d597d5762a0653b41453c54b",
    "bl_flickr_books.csv": "866df77eeb979eb07360ca64338116ed653f384581068e9422ae5e57cb3596f0",
    "bl_marc_sample.xml.gz": "23d2c93fdf7d124f08d63844b1fb59e5595f4268f4dbb56297a89cbd68429291",
}
#: Set to 1 to accept a data file whose sha256 is not in :data:`KNOWN_SHA256`.
ALLOW_UNKNOWN_ENV = "BLGENRE_ALLOW_UNKNOWN_DATA"

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


def allow_unknown() -> bool:
    """Whether the reader accepts data files with an unknown sha256 (:data:`ALLOW_UNKNOWN_ENV`)."""
    return os.environ.get(ALLOW_UNKNOWN_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


_CHECKED: dict[tuple, dict] = {}


def file_check(path: str | Path) -> dict:
    """How ``path`` compares with the sha256 the book knows for its name.

    ``status`` is ``known`` (it matches), ``unknown`` (the name is known, the content is not) or
    ``unregistered`` (the book knows no hash for this name); ``sha256`` is the file's own.
    """
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _CHECKED:
        digest, known = sha256_file(path), KNOWN_SHA256.get(path.name)
        status = "unregistered" if known is None else ("known" if digest == known else "unknown")
        check = {"file": path.name, "status": status, "sha256": digest, "known_sha256": known,
                 "bytes": stat.st_size}
        if status == "unknown":
            check["note"] = (f"{path.name} is not the file this book was written with (sha256 "
                             f"{digest[:12]}..., the book's is {known[:12]}...; {stat.st_size:,} "
                             "bytes): every number that follows comes from this file")
        _CHECKED[key] = check
    return dict(_CHECKED[key])


def checked_file(path: Path) -> Path:
    """``path`` if its sha256 is the known one (or unknown ones are allowed), else a DataError."""
    check = file_check(path)
    if check["status"] == "unknown" and not allow_unknown():
        raise DataError(
            f"{path}: sha256 {check['sha256'][:12]}... is not the known sha256 of the British "
            f"Library's {path.name} ({check['known_sha256'][:12]}...), so the file may be "
            f"truncated or altered. Fetch it again (https://doi.org/{BL_DOI}); if it is a newer "
            f"export you trust, set {ALLOW_UNKNOWN_ENV}=1 or pass --allow-unknown-data to "
            "python -m blgenre split.")
    return path


def locate(filename: str = ANNOTATED_FILE, download: bool = True) -> Path:
    """Find a data file: ``BLGENRE_DATA``, then the cache, then (main data only) the download.

    A file found by name is checked against :data:`KNOWN_SHA256` (see :func:`checked_file`).
    """
    env = os.environ.get("BLGENRE_DATA")
    candidates = [filename] if filename != ANNOTATED_FILE else [ANNOTATED_FILE, FULL_FILE]
    if env:
        folder = Path(env).expanduser()
        if not folder.is_dir():
            raise DataError(f"BLGENRE_DATA={env}: no such folder")
        for name in candidates:
            if (folder / name).is_file():
                return checked_file(folder / name)
        raise DataError(f"BLGENRE_DATA={env}: the folder has no {' or '.join(candidates)}")
    cache = cache_dir()
    for name in candidates:
        if (cache / name).is_file():
            return checked_file(cache / name)
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
    #: the data file against the known sha256 (:func:`file_check`; empty for made-up rows)
    source_check: dict = field(default_factory=dict)

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
    books, report = clean(raw, source=str(path))
    report.source_check = file_check(path)
    return books, report


def load_annotations(path: str | Path | None = None) -> pd.DataFrame:
    """The Zooniverse export, one row per classification (validated)."""
    path = Path(path) if path else locate(ANNOTATIONS_FILE, download=False)
    return read_csv_checked(path, ANNOTATION_COLUMNS)

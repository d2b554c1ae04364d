"""Reading a library's records and writing safe output files, for ``blgenre predict``.

Serves the chapter 'Your own collection'. A library's titles arrive as a MARC21 export (binary or
MARCXML, gzipped or not), a spreadsheet saved as CSV or TSV, or a plain list of titles. Each
reader here streams :class:`Item` records one at a time, so a catalogue of millions of records
never has to fit in memory, and keeps every record: one without a usable title is passed on
with a ``problem`` and left unlabelled, never dropped.

The output side guards the reader's data: an output path is checked before any work (it must
not be the input, also through a symbolic link, a hard link or a ``./`` spelling; it must not
exist unless asked to overwrite or resume), and text cells that a spreadsheet would run as a
formula are neutralised the way OWASP recommends (:func:`neutralise`), reversibly
(:func:`recover`).
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import os
import re
import sys
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from blgenre.errors import InputError

#: Column names taken for the title / the record id when no column is named (case-insensitive).
TITLE_NAMES = ("title",)
ID_NAMES = ("record_id", "id", "identifier", "book_identifier", "bl record id", "001",
            "control_number", "control number")
MARC_SUFFIXES = (".mrc", ".marc", ".xml", ".marcxml")
FORMATS = ("auto", "marc", "csv", "tsv", "text")
#: Characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SCRIPT_CAUTION = ("title(s) have no letters in the Latin script. The models learned from "
                  "catalogue titles that are almost all in Latin script, so treat those "
                  "predictions with caution (see the 'note' column)")


@dataclass
class Item:
    """One input record: its position, id, title (``None`` if it has none) and why not."""

    position: int  #: 1-based position in the input (line, data row or record)
    record_id: str
    title: str | None
    problem: str = ""
    record: object = None  #: the :class:`pymarc.Record` of a MARC input
    fields: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- formats
def _base_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _open_binary(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def detect_format(path: str | Path, forced: str = "auto") -> str:
    """``marc``, ``csv``, ``tsv`` or ``text``: from the name, else from the first bytes."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: input file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    if forced != "auto":
        return forced
    suffix = _base_suffix(path)
    if suffix in MARC_SUFFIXES:
        return "marc"
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".tab"):
        return "tsv"
    if suffix == ".txt":
        return "text"
    try:
        with _open_binary(path) as fh:
            head = fh.read(64)
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from None
    head = head.removeprefix(codecs.BOM_UTF8).lstrip()
    if head.startswith(b"<"):
        return "marc"
    if len(head) >= 24 and head[:5].isdigit() and head[20:22] == b"45":
        return "marc"
    return "text"


# --------------------------------------------------------------------------- readers
def read_text(path: Path) -> Iterator[Item]:
    """One title per line, split on ``\\n`` (and ``\\r\\n``) only: a title that contains another
    Unicode line separator (U+2028, ``\\x0b``, ``\\x85``...) stays one row. Trailing blank lines
    are not rows."""
    blank: list[int] = []
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            raw = raw.removesuffix(b"\n").removesuffix(b"\r")
            try:
                title = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{path}: line {number} is not UTF-8 text (byte "
                                 f"0x{raw[exc.start]:02x}); save the titles as UTF-8") from None
            if not title.strip():
                blank.append(number)
                continue
            for n in blank:  # blank lines between titles keep their rows
                yield Item(n, str(n), "", "blank title")
            blank = []
            yield Item(number, str(number), title)


def _pick_column(columns: list[str], given: str | None, names: tuple[str, ...], what: str,
                 option: str, path: Path) -> str | None:
    if given is not None:
        if given in columns:
            return given
        matches = [c for c in columns if c.strip().lower() == given.strip().lower()]
        if len(matches) == 1:
            return matches[0]
        raise InputError(f"{path}: no column {given!r} ({option}); found {columns[:12]}")
    matches = [c for c in columns if c.strip().lower() in names]
    if len(matches) > 1:
        raise InputError(f"{path}: columns {matches} could each be the {what}; choose one with "
                         f"{option}")
    return matches[0] if matches else None


def read_table(path: Path, delimiter: str, title_column: str | None = None,
               id_column: str | None = None) -> Iterator[Item]:
    """Rows of a CSV / TSV: the title column (``--title-column``, else one named ``title``) and
    the id column (``--id-column``, else one with a usual id name, else the row number)."""
    csv.field_size_limit(sys.maxsize)
    with _open_binary(path) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, delimiter=delimiter)
        try:
            header = next(reader, None)
            if header is None:
                raise InputError(f"{path}: input file is empty: no titles to classify")
            tcol = _pick_column(header, title_column, TITLE_NAMES, "title", "--title-column", path)
            if tcol is None:
                raise InputError(f"{path}: a {'TSV' if delimiter == chr(9) else 'CSV'} input "
                                 f"needs a 'title' column (or name one with --title-column); "
                                 f"found {header[:12]}")
            icol = _pick_column(header, id_column, ID_NAMES, "record id", "--id-column", path)
            ti, ii = header.index(tcol), (header.index(icol) if icol else None)
            for number, row in enumerate(reader, start=1):
                title = row[ti] if ti < len(row) else ""
                rid = row[ii].strip() if ii is not None and ii < len(row) else ""
                yield Item(number, rid or str(number), title,
                           "" if title.strip() else f"empty '{tcol}'")
        except UnicodeDecodeError as exc:
            raise InputError(f"{path}: not UTF-8 text ({exc.reason}); save it as a UTF-8 "
                             "CSV") from None
        except csv.Error as exc:
            raise InputError(f"{path}: not a valid CSV (line {reader.line_num}: {exc})") from None


def read_marc(path: Path) -> Iterator[Item]:
    """MARC21 records (binary or MARCXML, gzipped or not): id from 001, title from 245 $a $b."""
    from blgenre.data.marc import iter_records, record_fields

    for number, record in enumerate(iter_records(path), start=1):
        fields = record_fields(record)
        problem = ""
        if record.get("245") is None:
            problem = "no 245 (title) field"
        elif not fields["title"]:
            problem = "245 has no $a or $b"
        yield Item(number, fields["id"] or str(number), fields["title"], problem, record, fields)


def read_items(path: str | Path, fmt: str = "auto", title_column: str | None = None,
               id_column: str | None = None) -> Iterator[Item]:
    """Every record of the input, in order, whatever its format."""
    path = Path(path)
    fmt = detect_format(path, fmt)
    if fmt == "marc":
        return read_marc(path)
    if fmt in ("csv", "tsv"):
        return read_table(path, "," if fmt == "csv" else "\t", title_column, id_column)
    return read_text(path)


def count_records(path: str | Path, fmt: str) -> int:
    """A fast count of the records (for the progress bar's ETA): lines, or MARC record ends."""
    with _open_binary(Path(path)) as fh:
        block = fh.read(1 << 20)
        if fmt == "marc":
            xml = block.removeprefix(codecs.BOM_UTF8).lstrip().startswith(b"<")
            marker = re.compile(rb"</(?:\w+:)?record>" if xml else rb"\x1d")
        else:
            marker = re.compile(rb"\n")
        count, tail = 0, b""
        while block:
            joined = tail + block
            count += len(marker.findall(joined)) - len(marker.findall(tail))
            tail = joined[-32:]
            block = fh.read(1 << 20)
    return max(count - (fmt in ("csv", "tsv")), 0)  # a table's header is not a record


# --------------------------------------------------------------------------- safe cells
def neutralise(text: str) -> str:
    """A text cell a spreadsheet shows as text: a leading ``'`` before ``= + - @``, tab or CR.

    A cell that already starts with quotes followed by one of those gets one more quote, so
    :func:`recover` gives back every original exactly.
    """
    if text[:1] in FORMULA_START or (text[:1] == "'" and text.lstrip("'")[:1] in FORMULA_START
                                     and text.lstrip("'") != ""):
        return "'" + text
    return text


def recover(cell: str) -> str:
    """The original text of a cell written by :func:`neutralise`."""
    if cell[:1] == "'" and cell.lstrip("'")[:1] in FORMULA_START and cell.lstrip("'") != "":
        return cell[1:]
    return cell


def has_no_latin_letters(title: str) -> bool:
    """Whether a title has letters but none in the Latin script (the app's caution)."""
    if title.isascii():
        return False
    letters = [ch for ch in title if ch.isalpha()]
    return bool(letters) and not any("LATIN" in unicodedata.name(ch, "") for ch in letters)


# --------------------------------------------------------------------------- output paths
def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output(path: str | Path, inputs: list[Path], what: str = "output") -> Path:
    """``path`` if it can be written: not an input, not a folder, its parents folders we can write.

    Raises :class:`InputError` (one line, naming the file) before any work is done.
    """
    path = Path(path)
    for src in inputs:
        if _same_file(path, src):
            raise InputError(f"{path}: the {what} is the input file {src}; choose another name "
                             "(the input is never written over)")
    if path.is_dir():
        raise InputError(f"{path}: the {what} is a folder; give a file name")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{path}: cannot create the {what}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK):
        raise InputError(f"{path}: cannot write the {what}: no permission to write in {parent}")
    return path


def slug(label: str) -> str:
    """``prob_<slug>`` column name part of a label: ``Non-fiction`` -> ``non_fiction``."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_") or "label"

"""Reading library catalogue records (MARC21) for the weak-supervision chapter.

Libraries export their catalogues as MARC21, either as MARCXML or in the binary transmission
format (ISO 2709). The unlabelled British Library sample the book learns from
(``bl_marc_sample.xml.gz``) is MARCXML, and a reader's own catalogue export may be either, so
:func:`iter_records` reads both, gzipped or not, one record at a time (a national catalogue does not
fit in memory). :func:`record_fields` turns a record into the few fields the book uses:

- ``id``: control number (001);
- ``title``: title proper and remainder (245 $a $b), with the ISBD punctuation that ends each
  part (`` :``, `` /``, `` ;``, `` =``, and the closing full stop) trimmed, which is how the labelled
  data's ``Title`` column is written;
- ``place``, ``publisher``, ``date``: publication statement (260, else 264 with indicator 2 = 1);
- ``year``: date 1 from the fixed-length field 008 (positions 7-10), else the first year in the
  publication date;
- ``language``: 008 positions 35-37 (a MARC language code such as ``eng``), as a name where the
  book knows it (``English``), ``None`` where the cataloguer left it uncoded (``|||``).

A file that is not MARC, or that was cut short, raises a one-line :class:`~blgenre.errors.DataError`.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from xml.sax import SAXException, make_parser
from xml.sax.handler import feature_namespaces

import pymarc
from pymarc.marcxml import XmlHandler

from blgenre.errors import DataError

#: MARC language codes (https://www.loc.gov/marc/languages/) of the collection's main languages,
#: spelled as the labelled data's ``Languages`` column spells them.
LANGUAGE_NAMES = {
    "eng": "English", "ger": "German", "fre": "French", "dut": "Dutch", "ita": "Italian",
    "spa": "Spanish", "swe": "Swedish", "dan": "Danish", "nor": "Norwegian", "por": "Portuguese",
    "lat": "Latin", "grc": "Greek, Ancient (to 1453)", "gre": "Greek, Modern (1453- )",
    "hun": "Hungarian", "pol": "Polish", "rus": "Russian", "cze": "Czech", "fin": "Finnish",
    "ice": "Icelandic", "wel": "Welsh", "gle": "Irish", "gla": "Scottish Gaelic", "heb": "Hebrew",
    "yid": "Yiddish", "cat": "Catalan", "rum": "Romanian", "mul": "Multiple languages",
}

_CHUNK = 1 << 16
_ISBD_TAIL = re.compile(r"(\s*[/:;=,]|(?<!\.)\.)+$")
_YEAR = re.compile(r"1[5-9]\d\d|20[0-2]\d")


def _open(path: Path):
    """Binary handle on the file, decompressing gzip (recognised by its magic bytes)."""
    if not path.is_file():
        raise DataError(f"{path}: file not found" if not path.exists() else f"{path}: not a file")
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def _read(fh, path: Path, size: int) -> bytes:
    try:
        return fh.read(size)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: the gzip stream is damaged or cut short ({exc})") from None


class _Collector(XmlHandler):
    """pymarc's SAX handler, keeping finished records in a queue for the generator to hand out."""

    def __init__(self) -> None:
        super().__init__()
        self.done: deque = deque()

    def process_record(self, record) -> None:
        self.done.append(record)


def _iter_xml(fh, path: Path, first: bytes) -> Iterator[pymarc.Record]:
    handler = _Collector()
    parser = make_parser()
    parser.setContentHandler(handler)
    parser.setFeature(feature_namespaces, 1)
    count = 0
    chunk = first
    try:
        while chunk:
            parser.feed(chunk)
            while handler.done:
                count += 1
                yield handler.done.popleft()
            chunk = _read(fh, path, _CHUNK)
        parser.close()
    except SAXException as exc:
        where = f" after {count} record(s)" if count else ""
        raise DataError(f"{path}: not well-formed MARCXML{where} ({exc.getMessage()}); "
                        "the file may be cut short") from None
    while handler.done:
        count += 1
        yield handler.done.popleft()
    if count == 0:
        raise DataError(f"{path}: an XML file with no MARC <record> elements; is it MARCXML?")


def _iter_binary(fh, path: Path, first: bytes) -> Iterator[pymarc.Record]:
    class _Joined:  # the bytes already read for sniffing, then the rest of the file
        def __init__(self) -> None:
            self.head = first

        def read(self, n: int) -> bytes:
            out, self.head = self.head[:n], self.head[n:]
            return out + (_read(fh, path, n - len(out)) if len(out) < n else b"")

    reader = pymarc.MARCReader(_Joined(), to_unicode=True, force_utf8=True, utf8_handling="replace")
    for count, record in enumerate(reader):
        if record is None:
            problem = type(reader.current_exception).__name__
            raise DataError(f"{path}: binary MARC record {count + 1} is unreadable ({problem}); "
                            "the file may be cut short or not MARC")
        yield record


def iter_records(path: str | Path) -> Iterator[pymarc.Record]:
    """Stream the records of a MARCXML or binary MARC file (``.xml``, ``.mrc``, gzipped or not)."""
    path = Path(path)
    fh = _open(path)
    try:
        first = _read(fh, path, _CHUNK)
        start = first.lstrip()[:1]
        if not start:
            raise DataError(f"{path}: file is empty")
        if start == b"<":
            yield from _iter_xml(fh, path, first)
        elif start.isdigit():
            yield from _iter_binary(fh, path, first)
        else:
            raise DataError(f"{path}: neither MARCXML (starts with '<') nor binary MARC "
                            "(starts with a 5-digit record length)")
    finally:
        fh.close()


def trim_isbd(text: str) -> str:
    """A title part without the ISBD punctuation that joins it to the next part (`` :``, `` /``...)."""
    text = _ISBD_TAIL.sub("", re.sub(r"\s+", " ", text).strip())
    return text.strip()


def _subfields(field, code: str) -> str | None:
    values = [trim_isbd(v) for v in field.get_subfields(code)] if field is not None else []
    values = [v for v in values if v]
    return "; ".join(values) or None


def _publication(record):
    fields = record.get_fields("260") or [f for f in record.get_fields("264") if f.indicator2 == "1"]
    return fields[0] if fields else None


def record_fields(record: pymarc.Record) -> dict:
    """The fields the book uses from one record: id, title, place, publisher, date, year, language."""
    control = record.get("001")
    title_field = record.get("245")
    parts = [trim_isbd(v) for v in title_field.get_subfields("a", "b")] if title_field else []
    pub = _publication(record)
    date = _subfields(pub, "c")
    fixed = record.get("008")
    fixed = fixed.data if fixed is not None and fixed.data else ""
    year_008 = fixed[7:11]
    if year_008.isdigit() and _YEAR.fullmatch(year_008):
        year = int(year_008)
    else:
        found = _YEAR.search(date or "")
        year = int(found.group()) if found else None
    code = fixed[35:38].strip().lower()
    known = bool(code) and code.isalpha()
    return {
        "id": control.data.strip() if control is not None and control.data else None,
        "title": " ".join(p for p in parts if p) or None,
        "place": _subfields(pub, "a"),
        "publisher": _subfields(pub, "b"),
        "date": date.rstrip(".") if date else None,
        "year": year,
        "language_code": code if known else None,
        "language": LANGUAGE_NAMES.get(code, code) if known else None,
    }

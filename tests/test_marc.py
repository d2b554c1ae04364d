"""Reading MARC21 (MARCXML and binary, gzipped or not) with pymarc."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path

import pymarc
import pytest

from blgenre.data.marc import iter_records, record_fields, trim_isbd
from blgenre.errors import DataError

SAMPLE = "bl_marc_sample.xml.gz"


@pytest.fixture(scope="module")
def sample(real_data_session) -> Path:
    path = real_data_session / SAMPLE
    if not path.is_file():
        pytest.skip(f"{SAMPLE} is not in BLGENRE_DATA")
    return path


FIXED_008 = "870813s1866    enk" + " " * 17 + "eng  "  # 008: date 1 at 7-10, language at 35-37


def _record(tag_008: str = FIXED_008) -> pymarc.Record:
    assert len(tag_008) == 40
    record = pymarc.Record()
    record.add_field(pymarc.Field(tag="001", data="000000180"))
    record.add_field(pymarc.Field(tag="008", data=tag_008))
    record.add_field(pymarc.Field(tag="245", indicators=pymarc.Indicators("1", "0"), subfields=[
        pymarc.Subfield("a", "Elsie Traverton :"), pymarc.Subfield("b", "or, Self-pleasing. /"),
        pymarc.Subfield("c", "By A. A.")]))
    record.add_field(pymarc.Field(tag="260", indicators=pymarc.Indicators(" ", " "), subfields=[
        pymarc.Subfield("a", "London :"), pymarc.Subfield("b", "S.P.C.K.,"),
        pymarc.Subfield("c", "[1866].")]))
    return record


def test_real_sample_streams_every_record(sample):
    first = [record_fields(r) for r in itertools.islice(iter_records(sample), 5)]
    assert first[0]["id"] == "000000004"
    assert first[0]["title"] == "A a b c d e f, etc. [A Lappish primer, with prayers, etc.]"
    assert first[0]["year"] == 1800 and first[0]["place"] == "Stockholmisa"
    assert first[1] == {"id": "000000006", "title": "A che serve il Papa?", "place": "Roma",
                        "publisher": "Tip. Tiberina", "date": "1889", "year": 1889,
                        "language_code": None, "language": None}
    fields = [record_fields(r) for r in iter_records(sample)]
    assert len(fields) == 8970  # the count the data README gives
    assert len({f["id"] for f in fields}) == len(fields)
    assert all(f["title"] for f in fields)
    assert not any(f["title"].endswith((" :", " /", " ;", ",")) for f in fields)
    languages = {f["language"] for f in fields}
    assert {"English", "German", "French", None} <= languages
    years = [f["year"] for f in fields if f["year"] is not None]
    assert len(years) > 0.99 * len(fields) and 1700 <= min(years) and max(years) <= 1950


def test_record_fields_and_isbd():
    fields = record_fields(_record())
    assert fields == {"id": "000000180", "title": "Elsie Traverton or, Self-pleasing", "place": "London",
                      "publisher": "S.P.C.K", "date": "[1866]", "year": 1866,
                      "language_code": "eng", "language": "English"}
    # no 008 year: the year comes from 260 $c; uncoded language stays unknown
    fields = record_fields(_record("870813|uuuu" + "|" * 24 + "|||  "))
    assert fields["year"] == 1866 and fields["language"] is None
    assert trim_isbd("Poems ... etc. /") == "Poems ... etc"
    assert trim_isbd("Works ... ") == "Works ..."


def test_binary_marc_plain_and_gzipped(tmp_path):
    records = [_record(), _record()]
    raw = b"".join(r.as_marc() for r in records)
    for name, payload in (("a.mrc", raw), ("a.mrc.gz", gzip.compress(raw))):
        (tmp_path / name).write_bytes(payload)
        got = [record_fields(r) for r in iter_records(tmp_path / name)]
        assert [g["title"] for g in got] == ["Elsie Traverton or, Self-pleasing"] * 2


def test_marcxml_plain(tmp_path):
    path = tmp_path / "one.xml"
    path.write_bytes(pymarc.record_to_xml(_record(), namespace=True))
    assert [record_fields(r)["id"] for r in iter_records(path)] == ["000000180"]


@pytest.mark.parametrize("name, payload, message", [
    ("empty.xml", b"", "file is empty"),
    ("notes.xml", b"Some notes, not a catalogue", "neither MARCXML"),
    ("page.xml", b"<html><body>hello</body></html>", "no MARC <record>"),
    ("cut.mrc", None, r"record 2 is unreadable \(TruncatedRecord\)"),
    ("cut.xml", "xml", r"not well-formed MARCXML after 1 record\(s\)"),
    ("cut.xml.gz", "gz", "gzip stream is damaged or cut short"),
])
def test_broken_files_one_line_error(tmp_path, name, payload, message):
    if payload is None:
        payload = _record().as_marc() + _record().as_marc()[:40]
    elif payload == "xml":
        one = pymarc.record_to_xml(_record(), namespace=True)
        payload = b'<collection xmlns="http://www.loc.gov/MARC21/slim">' + one + one[:60]
    elif payload == "gz":
        payload = gzip.compress(b"<collection>" + b"<record></record>" * 5000)[:200]
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(DataError, match=message) as err:
        list(iter_records(path))
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_truncated_real_sample(sample, tmp_path):
    cut = tmp_path / "cut.xml.gz"
    cut.write_bytes(sample.read_bytes()[:20000])
    with pytest.raises(DataError, match="cut short"):
        list(iter_records(cut))


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        next(iter_records(tmp_path / "nothing.mrc"))

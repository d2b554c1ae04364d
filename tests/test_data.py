"""The data layer: locating, validating and cleaning the catalogue data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest

from blgenre import data
from blgenre.errors import DataError, DataUnavailableError


def test_clean_small_data(rows):
    extra = rows.iloc[:3].copy()  # the same three records again: duplicates to drop
    odd = rows.iloc[:4].copy()
    odd["BL record ID"] = ["x1", "x2", "x3", "x4"]
    odd["annotator_genre"] = ["The book contains both Fiction and Non-Fiction", "Can't tell",
                              "", "Fiction"]
    odd.loc[odd.index[3], "Title"] = "   "
    books, report = data.clean(pd.concat([rows, extra, odd]))
    assert report.duplicate_rows == 3
    assert report.dropped_labels == {"both": 1, "can't tell": 1, "missing": 1}
    assert report.empty_titles == 1
    assert report.books == len(books) == len(rows)
    assert set(books["label"]) == {"Fiction", "Non-fiction"}
    assert books["record_id"].is_unique
    assert books.loc[books["record_id"] == "000000000", "n_rows"].item() == 2


def test_conflicting_labels_dropped(rows):
    clash = rows.iloc[:1].copy()
    clash["annotator_genre"] = "Non-fiction" if rows.iloc[0]["annotator_genre"] == "Fiction" else "Fiction"
    books, report = data.clean(pd.concat([rows, clash]))
    assert report.conflicting_records == 1
    assert rows.iloc[0]["BL record ID"] not in set(books["record_id"])


@pytest.mark.parametrize("value, year", [("1877", 1877), ("[1850?]", 1850), ("c. 1799-1801", 1799),
                                          ("", None), ("unknown", None)])
def test_parse_year(value, year):
    parsed = data.parse_year(value)
    assert (pd.isna(parsed) and year is None) or parsed == year


def test_languages_and_labels():
    assert data.primary_language("Dutch ; English") == "Dutch"
    assert data.primary_language("") == "Unknown"
    assert data.normalise_label(" non-fiction ") == "Non-fiction"
    assert data.normalise_label("FICTION") == "Fiction"


@pytest.mark.parametrize("content, message", [
    (b"", "file is empty"),
    (b"   \n\n", "file is empty"),
    (b"a,b,c\n1,2,3\n", "missing required column"),
    ("BL record ID,Title\n1,Caf\xe9\n".encode("latin-1"), "not UTF-8"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not UTF-8"),
    (b'BL record ID,Title,annotator_genre\n1,"unterminated,Fiction\n', "not a valid CSV"),
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "train_valid.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        data.read_csv_checked(path)
    assert str(path) in str(info.value)


def test_header_only(tmp_path):
    path = tmp_path / "train_valid.csv"
    path.write_text(",".join(data.REQUIRED_COLUMNS) + "\n")
    with pytest.raises(DataError, match="no rows"):
        data.read_csv_checked(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        data.load_books(tmp_path / "nope.csv")


def test_env_folder(monkeypatch, tmp_path, csv_file):
    monkeypatch.setenv("BLGENRE_ALLOW_UNKNOWN_DATA", "1")  # made-up rows under the BL file name
    monkeypatch.setenv("BLGENRE_DATA", str(csv_file.parent))
    assert data.locate() == csv_file
    monkeypatch.setenv("BLGENRE_DATA", str(tmp_path / "missing"))
    with pytest.raises(DataError, match="no such folder"):
        data.locate()
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("BLGENRE_DATA", str(empty))
    with pytest.raises(DataError, match="has no train_valid.csv"):
        data.locate()


def test_cache_folder_used(monkeypatch, tmp_path, csv_file):
    monkeypatch.setenv("BLGENRE_ALLOW_UNKNOWN_DATA", "1")
    monkeypatch.delenv("BLGENRE_DATA", raising=False)
    monkeypatch.setenv("BLGENRE_CACHE", str(csv_file.parent))
    assert data.locate() == csv_file


def test_offline_download_fails_fast_with_instructions(monkeypatch, tmp_path, measure):
    monkeypatch.delenv("BLGENRE_DATA", raising=False)
    monkeypatch.setenv("BLGENRE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(data.loading, "BL_URL", "http://127.0.0.1:9/bl.csv")  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError, match="BLGENRE_DATA") as info:
        data.load_books()
    measure(f"offline data failure after {time.perf_counter() - start:.2f} s")
    assert "doi.org/10.23636/BKHQ-0312" in str(info.value)
    assert not (tmp_path / "cache" / data.FULL_FILE).exists()


def test_annotations_need_a_local_copy(monkeypatch, tmp_path):
    monkeypatch.delenv("BLGENRE_DATA", raising=False)
    monkeypatch.setenv("BLGENRE_CACHE", str(tmp_path))
    with pytest.raises(DataUnavailableError, match="annotations_2021_08_31.csv"):
        data.load_annotations()


def test_real_data(real_data):
    books, report = data.load_books()
    assert report.rows_read == 4374
    assert report.books == len(books) == books["record_id"].nunique()
    assert set(books["label"]) == {"Fiction", "Non-fiction"}
    assert books["year"].between(1500, 2030).all()
    assert books["title"].str.len().gt(0).all()
    assert report.source_check["status"] == "known"
    assert report.source_check["sha256"] == data.loading.KNOWN_SHA256["train_valid.csv"]


def test_every_shared_file_has_its_known_hash(real_data):
    """The registry agrees with the files the book's CI reads (all four BL files)."""
    for name in data.loading.KNOWN_SHA256:
        if (real_data / name).is_file():
            assert data.loading.file_check(real_data / name)["status"] == "known", name


@pytest.fixture
def truncated(real_data, tmp_path, monkeypatch):
    """The real train_valid.csv cut at 40% (still a readable CSV) in a folder of its own."""
    folder = tmp_path / "data"
    folder.mkdir()
    raw = (real_data / "train_valid.csv").read_bytes()
    cut = raw[: int(len(raw) * 0.4)]
    (folder / "train_valid.csv").write_bytes(cut[: cut.rindex(b"\n") + 1])
    monkeypatch.setenv("BLGENRE_DATA", str(folder))
    monkeypatch.delenv("BLGENRE_ALLOW_UNKNOWN_DATA", raising=False)
    return folder


def test_truncated_data_is_refused(truncated):
    with pytest.raises(DataError, match="not the known sha256") as info:
        data.load_books()
    message = str(info.value)
    assert "\n" not in message and "BLGENRE_ALLOW_UNKNOWN_DATA=1" in message
    assert "--allow-unknown-data" in message and "doi.org" in message


def test_split_cli_refuses_truncated_data_in_one_line(truncated, tmp_artifacts):
    env = {**os.environ, "BLGENRE_DATA": str(truncated), "BLGENRE_ARTIFACTS": str(tmp_artifacts)}
    proc = subprocess.run([sys.executable, "-m", "blgenre", "split"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sha256" in lines[0]
    assert not (tmp_artifacts / "split.csv").exists()


def test_split_cli_escape_hatch_records_the_unknown_file(truncated, tmp_artifacts, capsys,
                                                         monkeypatch):
    from blgenre.__main__ import main

    monkeypatch.setenv("BLGENRE_ALLOW_UNKNOWN_DATA", "0")  # the flag sets it; undone after
    assert main(["split", "--allow-unknown-data"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: train_valid.csv is not the file this book was written with")
    info = json.loads((tmp_artifacts / "split.json").read_text())
    check = info["load_report"]["source_check"]
    assert check["status"] == "unknown" and check["sha256"] == info["source_sha256"]
    assert check["known_sha256"] == data.loading.KNOWN_SHA256["train_valid.csv"]
    assert info["load_report"]["books"] < 1000  # about 40% of the books: what the book will show


def test_explicit_path_is_recorded_not_refused(csv_file, monkeypatch):
    monkeypatch.delenv("BLGENRE_ALLOW_UNKNOWN_DATA", raising=False)
    _, report = data.load_books(csv_file)  # a path chosen by the reader is read as given
    assert report.source_check["status"] == "unknown"

"""The unlabelled pool: checked files, and no validation or test book in the pool, the weak
labels or the language-model corpus (by record id or normalised title)."""

from __future__ import annotations

import pandas as pd
import pytest

from blgenre import data
from blgenre.data import split, unlabelled
from blgenre.errors import DataError


@pytest.fixture(scope="module")
def held_out(real_data_session):
    books = split.load_split()
    books = books[books["split"].isin(["valid", "test"])]
    return set(books["record_id"].astype(str)), set(books["title"].map(data.title_key))


def _assert_no_leak(frame: pd.DataFrame, held_out, id_col: str | None = "id") -> None:
    ids, keys = held_out
    if id_col:
        assert not set(frame[id_col].astype(str)) & ids
    assert not set(frame["title"].map(data.title_key)) & keys


def test_pool_has_no_validation_or_test_book(held_out):
    pool, steps = unlabelled.unlabelled_pool(report=True)
    assert len(pool) > 20_000
    assert set(pool["source"]) == {"flickr", "marc"}
    assert steps.loc["removed: validation or test book (same id or title)", "books"] < 0
    _assert_no_leak(pool, held_out)
    assert pool["title"].map(data.title_key).is_unique


def test_remove_labelled_by_id_and_by_title(held_out):
    test = split.part("test")
    frame = pd.DataFrame({"id": [test["record_id"][0], "x1", "x2"],
                          "title": ["Something else entirely", test["title"][1].upper() + " .",
                                    "A title no labelled book has, surely 12345"]})
    kept, counts = unlabelled.remove_labelled(frame)
    assert kept["id"].tolist() == ["x2"]
    assert counts["validation or test book"] == 2


def test_weak_labels_and_lm_corpus_have_no_held_out_book(held_out, monkeypatch):
    from blgenre.models import weak_variants
    from blgenre.weak import labels

    pool = unlabelled.unlabelled_pool()
    fake = pool.assign(prob_fiction=0.9, confidence=0.9, votes=1, weak_label="Fiction")
    monkeypatch.setattr(labels, "weak_labels", lambda **_: (fake, {}))
    _assert_no_leak(weak_variants.weak_frame(0.5), held_out)
    corpus = weak_variants.lm_corpus_with_pool(split.part("train")["title"].tolist())
    _assert_no_leak(pd.DataFrame({"title": corpus}), held_out, id_col=None)


def test_sha256_mismatch_and_schema_errors(tmp_path, monkeypatch, real_data_session):
    monkeypatch.setenv("BLGENRE_DATA", str(tmp_path))
    src = real_data_session / unlabelled.FLICKR.file
    (tmp_path / unlabelled.FLICKR.file).write_bytes(src.read_bytes()[:-10])
    with pytest.raises(DataError, match="is not the known sha256 .*866df77e"):
        unlabelled.locate_source(unlabelled.FLICKR)
    bad = tmp_path / "bad.csv"
    bad.write_text("book_identifier,name\n1,x\n")
    with pytest.raises(DataError, match=r"missing required column\(s\) \['title', 'date'\]"):
        unlabelled.load_flickr(bad)
    with pytest.raises(DataError, match="has no bl_marc_sample.xml.gz"):
        unlabelled.locate_source(unlabelled.MARC)


def test_guess_language():
    assert unlabelled.guess_language("Geschichte der Stadt und des Landes") == "German"
    assert unlabelled.guess_language("Histoire de la ville et des environs") == "French"
    assert unlabelled.guess_language("The history of the parish") == "English"
    assert unlabelled.guess_language("1234") == "Unknown"

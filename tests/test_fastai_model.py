"""The fastai ULMFiT model: a tiny model trained on synthetic titles, exported and reloaded."""

from __future__ import annotations

import json
import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("fastai")

from blgenre.errors import ModelError  # noqa: E402
from blgenre.models import fastai_model as fm  # noqa: E402
from blgenre.models import fastai_training as ft  # noqa: E402
from blgenre.models import load_model, read_meta  # noqa: E402
from blgenre.models.predict import predict_titles  # noqa: E402

FICTION = ["A tale of {}", "The {} : a novel", "Poems on {}", "{} , a romance in three volumes",
           "The ballad of {}", "Verses about {}", "A comedy of {}"]
NON_FICTION = ["A history of {}", "Report on the {} survey", "A treatise on {}",
               "Statistical account of {}", "A guide to {}", "Geology of {}", "Sermons on {}"]
NOUNS = ["Kent", "the river", "love", "Scotland", "the war", "London", "the sea", "India",
         "Wales", "the church", "railways", "the moors", "York", "Rome", "the king"]

TINY = fm.FastaiConfig(pretrained="titles-only", emb_sz=16, n_hid=24, n_layers=1, min_freq=1,
                       lm_bs=8, lm_seq_len=12, lm_epochs=2, lm_lr=1e-2, clas_bs=16,
                       clas_epochs=(1, 1, 0, 2), clas_lr=2e-2, lr_find_iters=5)


def synthetic(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fiction = i % 2 == 0
        template = rng.choice(FICTION if fiction else NON_FICTION)
        rows.append({"title": template.format(rng.choice(NOUNS)),
                     "label": "Fiction" if fiction else "Non-fiction"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny model for the whole module (training is the slow part)."""
    root = tmp_path_factory.mktemp("artifacts")
    mp = pytest.MonkeyPatch()
    mp.setenv("BLGENRE_ARTIFACTS", str(root))
    train, valid = synthetic(96, 0), synthetic(32, 1)
    folder = root / "models" / "fastai"
    model = fm.train_fastai(train, valid, train["title"].tolist() + valid["title"].tolist(),
                            TINY, folder=folder, data_sha256="0" * 64)
    yield folder, model, valid
    mp.undo()


def test_export_and_metadata(trained):
    folder, model, _ = trained
    assert (folder / fm.MODEL_FILE).is_file()
    meta = read_meta(folder)
    assert meta["kind"] == "fastai"
    assert meta["pretraining"] == "titles-only"
    assert meta["data_sha256"] == "0" * 64
    assert meta["vocab_size"] > 10
    assert meta["hyperparameters"]["emb_sz"] == 16
    assert set(meta["seconds"]) >= {"language model", "classifier", "total"}
    assert len(meta["files"][fm.MODEL_FILE]) == 64
    history = json.loads((folder / fm.HISTORY_FILE).read_text())
    stages = {e["stage"] for e in history["epochs"]}
    assert {"all layers", "freeze_to(-1)", "freeze_to(-2)", "unfreeze"} <= stages
    assert {"language model", "classifier"} <= set(history["lr_find"])


def test_round_trip(trained):
    folder, model, valid = trained
    loaded = load_model(folder)
    assert isinstance(loaded, fm.FastaiModel)
    titles = valid["title"].tolist()
    p = loaded.predict_proba(titles)
    assert p.shape == (len(titles), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(p, model.predict_proba(titles), atol=1e-6)
    # the order of predictions follows the input, although fastai sorts batches by length
    single = np.vstack([loaded.predict_proba([t]) for t in titles[:5]])
    np.testing.assert_allclose(single, p[:5], atol=1e-5)


def test_bad_inputs_do_not_crash(trained):
    folder, model, _ = trained
    titles = ["", "   ", "x" * 10_000, "Ἱστορία τῆς Ἑλλάδος", "Война и мир", "紅樓夢",
              "A tale\x00 of\tcontrol\ncharacters"]
    p = model.predict_proba(titles)
    assert p.shape == (len(titles), 2)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-6)
    assert model.predict_proba([]).shape == (0, 2)
    # a title's score does not depend on a very long title sharing its batch
    alone = model.predict_proba(["Poems on Kent", "A history of Wales"])
    mixed = model.predict_proba(["Poems on Kent", "x " * 5000, "A history of Wales"])
    np.testing.assert_allclose(mixed[[0, 2]], alone, atol=1e-6)
    out = predict_titles(model, titles)
    assert out.loc[0, "label"] == "" and np.isnan(out.loc[0, "prob_fiction"])
    assert (out["label"].iloc[2:] != "").all()


def test_sha256_mismatch_is_refused(trained, tmp_path):
    folder, _, _ = trained
    copy = tmp_path / "fastai"
    copy.mkdir()
    for f in folder.iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    data = bytearray((copy / fm.MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / fm.MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        fm.FastaiModel.load(copy)
    with pytest.raises(ModelError, match="sha256"):
        load_model(copy)


def test_not_a_fastai_folder(tmp_path):
    with pytest.raises(ModelError):
        fm.FastaiModel.load(tmp_path / "nothing-here")


def test_fastai_home_is_in_artifacts():
    import os

    assert os.environ["FASTAI_HOME"].endswith("fastai_home")


def test_two_runs_give_the_same_numbers(trained, tmp_path, monkeypatch):
    folder, model, valid = trained
    monkeypatch.setenv("BLGENRE_ARTIFACTS", str(tmp_path))
    train = synthetic(96, 0)
    again = fm.train_fastai(train, valid, train["title"].tolist() + valid["title"].tolist(),
                            TINY, folder=tmp_path / "again", data_sha256="0" * 64)
    titles = valid["title"].tolist()
    np.testing.assert_array_equal(again.predict_proba(titles), model.predict_proba(titles))
    assert again.history.epochs == model.history.epochs
    # the same bytes too: no training folder, no wall-clock time of the run (stable_files)
    assert read_meta(tmp_path / "again")["files"] == read_meta(folder)["files"]


def test_offline_falls_back_to_titles_only(monkeypatch, tmp_path):
    monkeypatch.setattr(ft, "wt103_status", lambda timeout=3.0: (False, "offline (test)"))
    train = synthetic(48, 2)
    cfg = fm.FastaiConfig(**{**TINY.as_dict(), "pretrained": "auto", "lr_find_iters": 0,
                             "lm_epochs": 1, "clas_epochs": (1, 0, 0, 0)})
    with fm._quiet():
        dls = ft._lm_dls(train["title"].tolist(), cfg, tmp_path)
        learn, path, reason = ft._language_model_learner(dls, cfg)
    assert path == "titles-only" and reason == "offline (test)"
    with pytest.raises(ModelError, match="WikiText-103"):
        ft._language_model_learner(dls, replace(cfg, pretrained="wikitext-103"))
    with pytest.raises(ValueError):
        ft._language_model_learner(dls, replace(cfg, pretrained="imagenet"))


def test_wikitext_path_with_stand_in_weights(monkeypatch, tmp_path):
    """The online path, offline: random weights of fastai's default size stand in for WT103."""
    import pickle

    import fastai.text.learner
    import torch
    from fastai.text.all import AWD_LSTM, defaults, get_language_model

    fake = tmp_path / "wt103-fwd"
    fake.mkdir()
    vocab = defaults.text_spec_tok + ["the", "a", "of", "tale", "history", "kent"]
    torch.save(get_language_model(AWD_LSTM, len(vocab)).state_dict(), fake / "lstm_fwd.pth")
    (fake / "itos_wt103.pkl").write_bytes(pickle.dumps(vocab))
    monkeypatch.setattr(ft, "wt103_status", lambda timeout=3.0: (True, "stand-in"))
    monkeypatch.setattr(fastai.text.learner, "untar_data", lambda url, **kwargs: fake)
    monkeypatch.setenv("BLGENRE_ARTIFACTS", str(tmp_path))
    train, valid = synthetic(32, 4), synthetic(16, 5)
    cfg = replace(TINY, pretrained="auto", lr_find_iters=0, lm_epochs_pretrained=1,
                  clas_epochs_pretrained=(1, 0, 0, 1))
    model = fm.train_fastai(train, valid, train["title"].tolist(), cfg,
                            folder=tmp_path / "model", data_sha256="0" * 64)
    assert model.meta["pretraining"] == "wikitext-103"
    assert model.meta["lm_arch"]["emb_sz"] == 400  # the weights dictate the size
    stages = [e["stage"] for e in model.history.epochs]
    assert stages == ["frozen", "freeze_to(-1)", "unfreeze"]
    assert model.predict_proba(["A tale of Kent"]).shape == (1, 2)


def test_direct_prediction_matches_fastai_get_preds(trained):
    """fastai_fast skips fastai's data loader: it must compute what get_preds computes,
    including for a title longer than the classifier's chunk (read alone)."""
    from blgenre.models.fastai_config import _quiet

    _, model, valid = trained
    titles = valid["title"].tolist()[:20] + [" ".join(["the history of kent"] * 30)]
    tokens = model._tokenize(titles)
    assert max(len(t) for t in tokens) > model.learn.model[0].bptt
    with _quiet(), model.learn.no_bar(), model.learn.no_logging():
        probs = []
        for toks in tokens:  # one title per batch: fastai adds no padding
            dl = model.learn.dls.test_dl([toks], bs=1, num_workers=0)
            probs.append(model.learn.get_preds(dl=dl)[0].numpy()[0])
    vocab = list(model.learn.dls.vocab[1])
    expected = np.array(probs)[:, [vocab.index(label) for label in model.labels]]
    np.testing.assert_allclose(model.predict_proba(titles), expected, atol=1e-6)


def test_int8_variant_is_checked_on_validation(trained):
    folder, model, valid = trained
    check = read_meta(folder)[fm.fastai_fast.CHECK_KEY]
    assert check["split"] == "validation" and check["n_titles"] == len(valid)
    assert check["passed"] == (check["label_agreement"] >= 0.995
                               and check["macro_f1_loss"] <= 0.005)
    loaded = load_model(folder)
    fast = loaded.fast()
    assert (fast.meta.get("variant") == "int8") == check["passed"]
    int8 = loaded.variant("int8")
    titles = valid["title"].tolist()
    p, q = loaded.predict_proba(titles), int8.predict_proba(titles)
    assert q.shape == p.shape and np.abs(p - q).max() < 0.2  # quantised, not another model
    assert loaded.network is not int8.network  # the plain model is left as it was
    np.testing.assert_allclose(loaded.predict_proba(titles), p)
    loaded.meta[fm.fastai_fast.CHECK_KEY] = {**check, "passed": False}
    assert loaded.fast() is loaded
    with pytest.raises(ValueError, match="unknown variant"):
        loaded.variant("bf16")


def test_pipelined_blocks_give_the_same_answers(trained):
    """predict_titles tokenises the next block in a second thread: same rows, same order."""
    folder, _, valid = trained
    loaded = load_model(folder)
    titles = valid["title"].tolist()
    out = predict_titles(loaded, titles, batch_size=5)  # several blocks, so the pipeline runs
    assert out["title"].tolist() == titles
    np.testing.assert_allclose(out[["prob_fiction", "prob_non_fiction"]].to_numpy(float),
                               loaded.predict_proba(titles), atol=1e-6)


def test_wt103_reason_is_the_same_in_every_build(monkeypatch, tmp_path):
    """The reason goes into model.json and the Hub card: no time taken, no machine's path."""
    import time
    import urllib.error
    import urllib.request

    calls = iter([0.0, 0.15])

    def unreachable(*args, **kwargs):
        time.sleep(next(calls))
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setenv("FASTAI_HOME", str(tmp_path))
    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    first, second = ft.wt103_status(timeout=3.0), ft.wt103_status(timeout=3.0)
    assert first == second and first[0] is False
    assert str(tmp_path) not in first[1]

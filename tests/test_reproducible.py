"""Two builds of the same files give the same deposit archive, byte for byte."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import make_rows

from blgenre import data, runinfo
from blgenre.evaluation.evaluate import evaluate
from blgenre.integrity import sha256_file
from blgenre.models import baseline
from blgenre.paths import model_dir
from blgenre.sharing import reproduce, share


def test_deposit_twice_gives_the_same_archive(tmp_artifacts, monkeypatch):
    books, _ = data.clean(make_rows())
    train, valid, test = books.iloc[:80], books.iloc[80:100], books.iloc[100:]
    model = baseline.BaselineModel.train_on_split(train, valid)
    model.save(model_dir("baseline"), n_train=len(train))
    evaluate("baseline", test, model.predict_proba(test["title"].tolist())[:, 0])
    first = share.deposit(["baseline"], out=tmp_artifacts / "one")
    time.sleep(1.1)  # a later build: every file is written again, with new times
    for path in model_dir("baseline").iterdir():
        os.utime(path)
    second = share.deposit(["baseline"], out=tmp_artifacts / "two")
    assert sha256_file(first["archive"]) == sha256_file(second["archive"])
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")  # honoured: another fixed time
    third = share.deposit(["baseline"], out=tmp_artifacts / "three")
    assert sha256_file(third["archive"]) != sha256_file(first["archive"])


def test_shared_copies_leave_out_build_times(tmp_artifacts):
    books, _ = data.clean(make_rows())
    train, valid, test = books.iloc[:80], books.iloc[80:100], books.iloc[100:]
    model = baseline.BaselineModel.train_on_split(train, valid)
    model.save(model_dir("baseline"), n_train=len(train))
    evaluate("baseline", test, model.predict_proba(test["title"].tolist())[:, 0])
    assert "train_seconds" in json.loads((model_dir("baseline") / "model.json").read_text())
    hub = share.hub_folders(["baseline"])["baseline"]
    shared = json.loads((hub / "model.json").read_text())
    assert "train_seconds" not in shared and shared["files"] == model.meta["files"]
    assert not any(runinfo.is_volatile(k) for k in shared)
    assert "Training time is left out of this card" in (hub / "README.md").read_text()
    assert str(tmp_artifacts) not in (hub / "README.md").read_text()  # no absolute paths


def test_stable_drops_durations_and_the_machine_at_any_depth():
    value = {"a": 1, "seconds": {"x": 2}, "hardware": {}, "runs": [{"lr": 1, "train_seconds": 3}]}
    assert runinfo.stable(value) == {"a": 1, "runs": [{"lr": 1}]}
    # the Hugging Face Trainer's log: its timings differed between two clean CI builds
    log = {"eval_loss": 0.3, "eval_runtime": 12.0, "eval_samples_per_second": 21.9,
           "eval_steps_per_second": 0.25, "train_runtime": 205.2, "seconds_per_epoch": 56.1}
    assert runinfo.stable({"log": [log]}) == {"log": [{"eval_loss": 0.3}]}


def test_fingerprints_compare_two_builds(tmp_path):
    for name, text in (("one", "a"), ("two", "b")):
        (tmp_path / name / "hub" / "baseline").mkdir(parents=True)
        (tmp_path / name / "split.csv").write_text("id\n1\n")
        (tmp_path / name / "hub" / "baseline" / "README.md").write_text(text)
    one, two = (reproduce.fingerprints(tmp_path / n) for n in ("one", "two"))
    assert set(one) == {"split.csv", "hub/baseline/README.md"}
    table = reproduce.compare(one, two).set_index("output")
    assert table.loc["split.csv", "same bytes"] and not table.loc["hub/baseline/README.md", "same bytes"]
    assert reproduce.main([str(tmp_path / "one"), str(tmp_path / "two")]) == 1
    assert reproduce.main([str(tmp_path / "one"), str(tmp_path / "one")]) == 0


SAVE_TWICE = r"""
import pickle, sys, random
random.seed(0)
from pathlib import Path
import torch, spacy
from blgenre.models.stable_files import fixed_serialization_id, sorted_stop_words
out = Path(sys.argv[1])
torch.save({"w": torch.arange(6.0)}, out / "weights.pt")
fixed_serialization_id(out / "weights.pt")
nlp = spacy.blank("en")
with sorted_stop_words():
    (out / "nlp.pkl").write_bytes(pickle.dumps(nlp.vocab))
"""


def test_torch_files_and_spacy_stop_words_are_the_same_bytes_in_every_process(tmp_path):
    """Two processes with different string hashing write the same bytes (fastai's model file
    holds a spaCy vocabulary and is written by torch.save)."""
    import subprocess
    import sys

    import torch

    for seed in ("1", "2"):
        (tmp_path / seed).mkdir()
        subprocess.run([sys.executable, "-c", SAVE_TWICE, str(tmp_path / seed)], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
    for name in ("weights.pt", "nlp.pkl"):
        assert sha256_file(tmp_path / "1" / name) == sha256_file(tmp_path / "2" / name), name
    assert torch.load(tmp_path / "1" / "weights.pt")["w"].tolist() == [0, 1, 2, 3, 4, 5]


def test_skops_file_has_no_addresses_or_times(tmp_artifacts, tmp_path):
    import zipfile

    books, _ = data.clean(make_rows())
    model = baseline.BaselineModel.train_on_split(books.iloc[:80], books.iloc[80:100])
    first = model.save(tmp_path / "one") / baseline.MODEL_FILE
    time.sleep(1.1)
    second = model.save(tmp_path / "two") / baseline.MODEL_FILE
    assert sha256_file(first) == sha256_file(second)
    with zipfile.ZipFile(first) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"_stop_words_id" not in zf.read("schema.json")  # a memory address
        # renumbered in order of appearance, not memory addresses (twelve digits or more)
        assert all(int(n[:-4]) < 10_000 for n in zf.namelist() if n.endswith(".npy"))
    loaded = baseline.BaselineModel.load(tmp_path / "two")
    titles = books["title"].tolist()[:5]
    assert (loaded.predict_proba(titles) == model.predict_proba(titles)).all()


def test_reproduce_command_explains_bad_arguments(tmp_path, capsys):
    from blgenre.sharing import reproduce

    (tmp_path / "notes.txt").write_text("not json")
    assert reproduce.main([str(tmp_path / "missing")]) == 2
    assert reproduce.main([str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "no such folder or file" in err[0] and "not a fingerprint" in err[1]
    with pytest.raises(SystemExit) as info:  # argparse: --help prints usage and exits 0
        reproduce.main(["--help"])
    assert info.value.code == 0


def test_commit_ignores_the_report_it_is_written_into(tmp_path, monkeypatch):
    """``bench_predict --append`` adds to its own report: that is not a change to the code."""
    import subprocess

    import blgenre.paths

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "report.json").write_text("{}\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    monkeypatch.setattr(blgenre.paths, "PROJECT_ROOT", tmp_path)
    clean = runinfo.commit()
    assert len(clean) == 12 and "+" not in clean
    outside = tmp_path.parent / f"{tmp_path.name}-report.json"  # a report beside the checkout
    assert runinfo.commit(ignore=outside) == clean  # (git refused the pathspec: 'unknown')
    (tmp_path / "report.json").write_text('{"rows": []}\n')
    assert runinfo.commit() == clean + "+changes"
    assert runinfo.commit(ignore=tmp_path / "report.json") == clean
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "other.json").write_text("{}\n")
    git("add", "benchmarks")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a benchmark")
    clean = runinfo.commit(ignore=tmp_path / "report.json")
    (tmp_path / "benchmarks" / "other.json").write_text('{"runs": []}\n')  # not code
    assert runinfo.commit(ignore=tmp_path / "report.json") == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert runinfo.commit(ignore=tmp_path / "report.json") == clean + "+changes"
    assert runinfo.commit(ignore=outside) == clean + "+changes"

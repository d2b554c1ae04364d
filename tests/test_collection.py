"""Your own collection: MARC in and out, thresholds, resume after a kill, training on own labels."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pymarc
import pytest
from conftest import FICTION, NONFICTION, WORDS

from blgenre.__main__ import main
from blgenre.models import load_model
from blgenre.models.marc_out import precision_thresholds
from blgenre.models.own_labels import train_own

POETRY = ["Poems on {} and {}", "Odes to {} and {}", "Ballads of {} and {}", "Sonnets: {} and {}"]


def made_up_titles(n: int, seed: int = 0, poetry: bool = False) -> pd.DataFrame:
    rng = random.Random(seed)
    groups = [("Fiction", FICTION), ("Non-fiction", NONFICTION)]
    if poetry:
        groups.append(("Poetry", POETRY))
    rows = []
    for i in range(n):
        label, patterns = groups[i % len(groups)]
        title = rng.choice(patterns).format(rng.choice(WORDS), rng.choice(WORDS)) + f" no. {i}"
        rows.append({"id": f"r{i:05d}", "title": title, "genre": label})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def own_model(tmp_path_factory) -> Path:
    """A baseline trained with ``train_own`` on made-up titles (it keeps validation.csv)."""
    folder = tmp_path_factory.mktemp("own")
    made_up_titles(300).to_csv(folder / "labels.csv", index=False)
    train_own("baseline", folder / "labels.csv", folder / "model", id_column="id")
    return folder / "model"


def marc_file(path: Path, n: int, no_title: tuple[int, ...] = ()) -> Path:
    """A MARCXML (or binary, by suffix) file of ``n`` records with made-up titles."""
    titles = made_up_titles(n, seed=1)["title"]
    records = []
    for i, title in enumerate(titles):
        r = pymarc.Record()
        r.add_field(pymarc.Field(tag="001", data=f"{i:09d}"))
        if i not in no_title:
            r.add_field(pymarc.Field(tag="245", indicators=pymarc.Indicators("1", "0"),
                                     subfields=[pymarc.Subfield("a", title)]))
        r.add_field(pymarc.Field(tag="260", indicators=pymarc.Indicators(" ", " "), subfields=[
            pymarc.Subfield("a", "London :"), pymarc.Subfield("c", f"{1800 + i % 100}.")]))
        records.append(r)
    if path.suffix == ".mrc":
        path.write_bytes(b"".join(r.as_marc() for r in records))
    else:
        writer = pymarc.XMLWriter(open(path, "wb"))
        for r in records:
            writer.write(r)
        writer.close()
    return path


def predict(*args) -> int:
    return main(["predict", "--quiet", *map(str, args)])


# --------------------------------------------------------------------------- thresholds
def test_precision_thresholds_reach_the_target():
    rng = np.random.default_rng(0)
    p = rng.random(2000)
    truth = np.where(rng.random(2000) < p, "A", "B")  # calibrated: P(A) = p
    probs = np.column_stack([p, 1 - p])
    table = precision_thresholds(truth, probs, ["A", "B"], target=0.9).set_index("label")
    for label, col in (("A", 0), ("B", 1)):
        t = table.loc[label, "threshold"]
        chosen = (probs.argmax(1) == col) & (probs.max(1) >= t)
        assert (truth[chosen] == label).mean() >= 0.9
        assert 0.75 < t < 0.95  # a calibrated model needs about 0.9; not everything, not nothing
    never = precision_thresholds(truth, probs, ["A", "B"], target=1.01)
    assert np.isinf(never["threshold"]).all()


# --------------------------------------------------------------------------- MARC in and out
@pytest.mark.parametrize("suffix", [".xml", ".mrc"])
def test_marc_in_genre_terms_out(own_model, tmp_path, suffix, capsys):
    src = marc_file(tmp_path / f"records{suffix}", 200, no_title=(5,))
    before = src.read_bytes()
    out, marc = tmp_path / "pred.csv", tmp_path / f"labelled{suffix}"
    assert predict("--model", own_model, "--input", src, "--output", out, "--marc-out", marc) == 0
    assert src.read_bytes() == before  # the original is never modified
    df = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(df) == 200 and df["record_id"].iloc[7] == "000000007"
    assert df["label"].iloc[5] == "" and "no 245" in df["note"].iloc[5]
    records = (pymarc.parse_xml_to_array(str(marc)) if suffix == ".xml"
               else list(pymarc.MARCReader(marc.read_bytes(), to_unicode=True)))
    assert len(records) == 200
    review = pd.read_csv(tmp_path / "pred-review.csv", dtype=str, keep_default_na=False)
    labelled = [r for r in records if r.get("655")]
    assert len(labelled) + len(review) == 200 and labelled
    for r in labelled:
        f655, f883 = r.get("655"), r.get("883")
        assert f655.indicator2 == "7" and f655.get_subfields("2") == ["blgenre"]
        row = df[df["record_id"] == r["001"].data].iloc[0]
        assert f655.get_subfields("a") == [row["label"]]
        assert f655.get_subfields("8") == f883.get_subfields("8") == ["1\\p"]
        assert f883.get_subfields("a")[0].startswith("blgenre model sha256:")
    probs = pd.to_numeric(review["probability"], errors="coerce")
    assert probs.dropna().is_monotonic_increasing  # most uncertain first
    assert "000000005" in set(review["record_id"])
    assert "got a genre term at 95% validation precision" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (None, "cut short"),
    (b"this is not MARC at all\n", "neither MARCXML"),
    (b"00042nam  22000251  4500\x1e\x1d" * 3, "unreadable"),
])
def test_bad_marc(own_model, tmp_path, capsys, content, message):
    src = tmp_path / "records.mrc"
    if content is None:  # truncated
        whole = marc_file(tmp_path / "whole.xml", 50).read_bytes()
        src = tmp_path / "records.xml"
        src.write_bytes(whole[: len(whole) * 2 // 3])
    else:
        src.write_bytes(content)
    out = tmp_path / "o.csv"
    assert predict("--model", own_model, "--input", src, "--output", out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and str(src) in err and "\n" not in err
    assert not list(tmp_path.glob("o.csv*"))


def test_marc_without_any_245(own_model, tmp_path, capsys):
    src = marc_file(tmp_path / "records.xml", 4, no_title=(0, 1, 2, 3))
    assert predict("--model", own_model, "--input", src, "--output", tmp_path / "o.csv") == 2
    assert "no record has a usable title" in capsys.readouterr().err


# --------------------------------------------------------------------------- resume
def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "blgenre", "predict", "--quiet", *map(str, args)]


def test_resume_after_kill_gives_identical_output(own_model, tmp_path):
    src = marc_file(tmp_path / "records.xml", 3000, no_title=(17,))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    common = ["--model", own_model, "--input", src, "--chunk-size", "50"]
    whole = tmp_path / "whole"
    whole.mkdir()
    subprocess.run(_cli(*common, "--output", whole / "p.csv", "--marc-out", whole / "m.xml"),
                   check=True, env=env)
    cut = tmp_path / "cut"
    cut.mkdir()
    # a worker process predicts some of the chunks (as for fastai): same bytes, also resumed
    args = _cli(*common, "--output", cut / "p.csv", "--marc-out", cut / "m.xml", "--streams", "2")
    rng = random.Random(int(time.time()))
    state = cut / "p.csv.partial.json"
    for _ in range(5):  # kill at a random point; retry if the run finished first
        for leftover in cut.iterdir():
            leftover.unlink()
        target = rng.randint(1, 50) * 50
        proc = subprocess.Popen(args, env=env)
        workers = []
        while proc.poll() is None:
            try:
                if json.loads(state.read_text())["counts"]["records"] >= target:
                    time.sleep(rng.random() * 0.05)  # somewhere inside the next chunk
                    workers = psutil.Process(proc.pid).children(recursive=True)
                    proc.send_signal(signal.SIGKILL)
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.005)
        proc.wait()
        if proc.returncode == -signal.SIGKILL:
            break
    assert proc.returncode == -signal.SIGKILL, "the run always finished before it could be killed"
    assert workers, "the run had no worker process"
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, "the killed run's worker process outlived it"
    assert not (cut / "p.csv").exists() and (cut / "p.csv.partial").exists()
    subprocess.run([*args, "--resume"], check=True, env=env)
    for name in ("p.csv", "m.xml", "p-review.csv"):
        assert (cut / name).read_bytes() == (whole / name).read_bytes(), name
    assert not list(cut.glob("*.partial*"))


# --------------------------------------------------------------------------- own labels
def test_train_three_labels_works_like_two(tmp_path, capsys):
    made_up_titles(240, poetry=True).to_csv(tmp_path / "labels.csv", index=False)
    assert main(["train", "--kind", "baseline", "--labels", str(tmp_path / "labels.csv"),
                 "--text-column", "title", "--label-column", "genre", "--id-column", "id",
                 "--out", str(tmp_path / "my-model")]) == 0
    err = capsys.readouterr().err
    assert "test macro-F1" in err and "Poetry" in err
    folder = tmp_path / "my-model"
    meta = json.loads((folder / "model.json").read_text())
    assert meta["labels"] == ["Fiction", "Non-fiction", "Poetry"]
    assert "validation.csv" in meta["files"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---") and "Poetry" in card and "Macro-F1" in card
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["macro_f1"] > 0.8 and len(metrics["per_class"]) == 3
    probs = load_model(folder).predict_proba(["Odes to the sea and love"])
    assert probs.shape == (1, 3) and probs[0].argmax() == 2
    src = tmp_path / "t.txt"
    src.write_text("Odes to Venice and war\nA history of steam in Norway\n")
    out = tmp_path / "p.csv"
    assert predict("--model", folder, "--input", src, "--output", out) == 0
    df = pd.read_csv(out)
    assert [c for c in df.columns if c.startswith("prob_")] == [
        "prob_fiction", "prob_non_fiction", "prob_poetry"]
    assert df["label"].tolist() == ["Poetry", "Non-fiction"]
    assert main(["train", "--kind", "baseline", "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(folder)]) == 2  # an existing model folder is not replaced
    assert "pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("counts, message", [
    ({"Fiction": 40}, "a single label"),
    ({"Fiction": 40, "Non-fiction": 40, "Poetry": 4}, "'Poetry' has 4; every label needs at least 10"),
])
def test_train_refuses_too_few_labels(tmp_path, capsys, counts, message):
    rows = [{"title": f"Title {label} {i}", "genre": label}
            for label, n in counts.items() for i in range(n)]
    pd.DataFrame(rows).to_csv(tmp_path / "labels.csv", index=False)
    out = tmp_path / "m"
    assert main(["train", "--kind", "baseline", "--labels", str(tmp_path / "labels.csv"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "labels.csv" in err
    assert not out.exists()

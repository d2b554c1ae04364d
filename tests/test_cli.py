"""``python -m blgenre predict`` with the baseline: good and bad input, tampered models."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from blgenre import data
from blgenre.__main__ import main
from blgenre.models import baseline, load_model


@pytest.fixture
def model_dir(tmp_artifacts, rows):
    books, _ = data.clean(rows)
    train, valid = books.iloc[:90], books.iloc[90:]
    model, _ = baseline.train_baseline(train, valid)
    return model.save(tmp_artifacts / "models" / "baseline")


def run(*args: str) -> int:
    return main(["predict", *args])


def test_text_input_keeps_order_and_blank_lines(model_dir, tmp_path, capsys):
    src = tmp_path / "titles.txt"
    long = "A novel " * 1250  # 10,000 characters
    src.write_text(f"The castle romance of love. A novel\n\nA history of geology in Scotland\n"
                   f"Путешествие по России\n{long}\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 0
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == ["title", "label", "prob_fiction", "prob_non_fiction"]
    assert len(df) == 5
    assert df["label"].tolist()[:3] == ["Fiction", "", "Non-fiction"]
    assert df["label"].iloc[3] in {"Fiction", "Non-fiction"}
    assert df["title"].iloc[4] == long  # output keeps the input title as given
    probs = df.loc[df["label"] != "", ["prob_fiction", "prob_non_fiction"]].astype(float)
    assert ((probs.sum(axis=1) - 1).abs() < 1e-5).all()
    err = capsys.readouterr().err
    assert "1 blank title(s)" in err and "longer than 1000" in err


def test_csv_input(model_dir, tmp_path):
    src = tmp_path / "titles.csv"
    pd.DataFrame({"id": [1, 2], "Title": ["Poems of love", "Report on the railways"]}).to_csv(
        src, index=False)
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 0
    assert pd.read_csv(out)["label"].tolist() == ["Fiction", "Non-fiction"]


@pytest.mark.parametrize("content, message", [
    (b"", "input file is empty"),
    (b"\n\n  \n", "input file is empty"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
])
def test_bad_text_input(model_dir, tmp_path, capsys, content, message):
    src = tmp_path / "titles.txt"
    src.write_bytes(content)
    assert run("--model", str(model_dir), "--input", str(src), "--output",
               str(tmp_path / "o.csv")) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()


def test_csv_without_title_column(model_dir, tmp_path, capsys):
    src = tmp_path / "titles.csv"
    src.write_text("name,year\nx,1890\n")
    assert run("--model", str(model_dir), "--input", str(src), "--output",
               str(tmp_path / "o.csv")) == 2
    assert "needs a 'title' column" in capsys.readouterr().err


def test_missing_input_and_model(model_dir, tmp_path, capsys):
    assert run("--model", str(model_dir), "--input", str(tmp_path / "none.txt"),
               "--output", str(tmp_path / "o.csv")) == 2
    assert "input file not found" in capsys.readouterr().err
    src = tmp_path / "t.txt"
    src.write_text("Poems\n")
    assert run("--model", str(tmp_path / "nomodel"), "--input", str(src),
               "--output", str(tmp_path / "o.csv")) == 2
    assert "no such model folder" in capsys.readouterr().err
    (tmp_path / "notmodel").mkdir()
    assert run("--model", str(tmp_path / "notmodel"), "--input", str(src),
               "--output", str(tmp_path / "o.csv")) == 2
    assert "not a model folder" in capsys.readouterr().err


def test_tampered_pickle_is_refused(model_dir, tmp_path):
    pkl = model_dir / baseline.MODEL_FILE
    blob = bytearray(pkl.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    pkl.write_bytes(bytes(blob))
    with pytest.raises(Exception, match="sha256"):
        load_model(model_dir)
    src = tmp_path / "t.txt"
    src.write_text("Poems\n")
    proc = subprocess.run([sys.executable, "-m", "blgenre", "predict", "--model", str(model_dir),
                           "--input", str(src), "--output", str(tmp_path / "o.csv")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "refuses to load" in proc.stderr
    assert "Traceback" not in proc.stderr

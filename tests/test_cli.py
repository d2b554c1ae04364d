"""``python -m blgenre predict`` with the baseline: good and bad input, safe output, tampered models."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import make_rows

from blgenre import data
from blgenre.__main__ import main
from blgenre.models import baseline, load_model
from blgenre.models.predict_io import FORMULA_START, recover


@pytest.fixture(scope="module")
def trained_baseline(tmp_path_factory):
    books, _ = data.clean(make_rows())
    train, valid = books.iloc[:90], books.iloc[90:]
    model = baseline.BaselineModel.train_on_split(train, valid)
    return model.save(tmp_path_factory.mktemp("models") / "baseline")


@pytest.fixture
def model_dir(trained_baseline, tmp_path):
    """A fresh copy of a baseline trained on made-up titles (tests may damage it)."""
    return Path(shutil.copytree(trained_baseline, tmp_path / "models" / "baseline"))


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
    assert list(df.columns) == ["record_id", "title", "label", "prob_fiction", "prob_non_fiction",
                                "model", "model_version", "note"]
    assert len(df) == 5
    assert df["record_id"].tolist() == [1, 2, 3, 4, 5]  # line numbers
    assert df["label"].tolist()[:3] == ["Fiction", "", "Non-fiction"]
    assert df["label"].iloc[3] in {"Fiction", "Non-fiction"}
    assert df["title"].iloc[4] == long  # output keeps the input title as given
    assert set(df["model"]) == {"baseline"} and df["model_version"].str.startswith("sha256:").all()
    probs = df.loc[df["label"] != "", ["prob_fiction", "prob_non_fiction"]].astype(float)
    assert ((probs.sum(axis=1) - 1).abs() < 1e-5).all()
    err = capsys.readouterr().err
    assert "1 record(s) without a usable title" in err and "longer than 1000" in err
    assert f"with baseline {df['model_version'].iloc[0]}" in err  # which model, which copy
    # the app's caution for titles in another script, in the CLI and in the row's note
    assert "no letters in the Latin script" in err
    assert "Latin" in df["note"].iloc[3] and df["note"].iloc[2] == ""


def test_text_split_on_newline_only(model_dir, tmp_path):
    titles = ["Poems\u2028of love", "A history\x0bof Scotland", "Tales\x0cof\x1cthe\x1dsea\x1e",
              "Report\x85on railways", "The moor. A novel"]
    src = tmp_path / "titles.txt"
    src.write_bytes("\r\n".join(titles[:3]).encode() + b"\n" + "\n".join(titles[3:]).encode())
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 0
    with open(out, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5  # 5 lines in, 5 rows out
    assert [recover(r["title"]) for r in rows] == titles


def test_csv_input(model_dir, tmp_path):
    src = tmp_path / "titles.csv"
    pd.DataFrame({"id": ["b1", "b2"], "Title": ["Poems of love", "Report on the railways"]}).to_csv(
        src, index=False)
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 0
    df = pd.read_csv(out)
    assert df["label"].tolist() == ["Fiction", "Non-fiction"]
    assert df["record_id"].tolist() == ["b1", "b2"]  # the id column found by its name


def test_tsv_with_named_columns(model_dir, tmp_path):
    src = tmp_path / "export.tsv"
    src.write_text("shelfmark\tname\n12.a.1\tPoems of love\n12.a.2\tReport on the railways\n")
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out),
               "--title-column", "name", "--id-column", "shelfmark") == 0
    assert pd.read_csv(out)["record_id"].tolist() == ["12.a.1", "12.a.2"]


def test_csv_with_title_and_Title_is_ambiguous(model_dir, tmp_path, capsys):
    src = tmp_path / "titles.csv"
    src.write_text("title,Title\nPoems of love,Report on the railways\n")
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "could each be the title" in err and "--title-column" in err
    assert not out.exists()
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out),
               "--title-column", "Title") == 0
    assert pd.read_csv(out)["title"].tolist() == ["Report on the railways"]


def test_formula_cells_are_neutralised(model_dir, tmp_path):
    """Open the CSV as a spreadsheet would: no text cell may start a formula; titles recover."""
    titles = ['=HYPERLINK("http://x","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
              "-2+3+cmd|' /C calc'!A0", "'=1+1", "'Tis a tale of love", "A plain title"]
    src = tmp_path / "titles.csv"
    pd.DataFrame({"id": ["=1+1", "2", "3", "4", "5", "6", "7"], "title": titles}).to_csv(
        src, index=False)
    out = tmp_path / "out.csv"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 0
    with open(out, newline="", encoding="utf-8") as fh:  # RFC 4180 quoting, as spreadsheets read
        rows = list(csv.reader(fh))
    text_cols = [rows[0].index(c) for c in ("record_id", "title", "label", "model", "note")]
    for row in rows[1:]:
        for i in text_cols:
            assert not row[i].startswith(FORMULA_START), row[i]
    got = [recover(r[1]) for r in rows[1:]]
    assert got == titles
    assert recover(rows[1][0]) == "=1+1"
    assert rows[6][1] == "'Tis a tale of love"  # an ordinary apostrophe is left alone


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
    assert not list(tmp_path.glob("o.csv*"))  # no partial files left either


@pytest.mark.parametrize("content, message", [
    ("name,year\nx,1890\n", "needs a 'title' column"),
    ("title,year\n,1890\n  ,1891\n", "empty in every row"),
])
def test_bad_csv(model_dir, tmp_path, capsys, content, message):
    src = tmp_path / "titles.csv"
    src.write_text(content)
    assert run("--model", str(model_dir), "--input", str(src), "--output",
               str(tmp_path / "o.csv")) == 2
    err = capsys.readouterr().err
    assert message in err and str(src) in err
    assert not list(tmp_path.glob("o.csv*"))


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


# --------------------------------------------------------------------------- never destroy input
def _same_input_spellings(tmp_path):
    src = tmp_path / "titles.csv"
    os.symlink(src, tmp_path / "link.csv")
    os.link(src, tmp_path / "hard.csv")
    return src, [str(src), f"{tmp_path}/./titles.csv", f"{tmp_path}/sub/../titles.csv",
                 str(tmp_path / "link.csv"), str(tmp_path / "hard.csv")]


def test_output_equal_to_input_is_refused(model_dir, tmp_path, capsys, monkeypatch):
    src = tmp_path / "titles.csv"
    src.write_text("title,shelfmark\nPoems of love,12.a.1\n")
    (tmp_path / "sub").mkdir()
    before = src.read_bytes()
    _, spellings = _same_input_spellings(tmp_path)
    monkeypatch.chdir(tmp_path)
    for output in [*spellings, "./titles.csv", "titles.csv"]:
        for extra in ([], ["--overwrite"], ["--resume"]):
            assert run("--model", str(model_dir), "--input", str(src), "--output", output,
                       *extra) == 2
            assert "is the input file" in capsys.readouterr().err
            assert src.read_bytes() == before
    assert run("--model", str(model_dir), "--input", "titles.csv", "--output", str(src),
               "--overwrite") == 2


def test_existing_output_needs_overwrite(model_dir, tmp_path, capsys):
    src = tmp_path / "t.txt"
    src.write_text("Poems of love\n")
    out = tmp_path / "o.csv"
    out.write_text("precious\n")
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out)) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "precious\n"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out),
               "--resume") == 2  # nothing to resume: the output is not ours to continue
    assert out.read_text() == "precious\n"
    assert run("--model", str(model_dir), "--input", str(src), "--output", str(out),
               "--overwrite") == 0
    assert pd.read_csv(out)["label"].tolist() == ["Fiction"]


def test_output_path_checked_before_any_work(model_dir, tmp_path, capsys):
    src = tmp_path / "t.txt"
    src.write_text("Poems of love\n")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir").mkdir()
    for output, message in ((tmp_path / "adir", "is a folder"),
                            (tmp_path / "afile" / "o.csv", "is a file, not a folder")):
        # a model folder that does not exist: the output is refused before the model is loaded
        assert run("--model", str(tmp_path / "nomodel"), "--input", str(src),
                   "--output", str(output)) == 2
        assert message in capsys.readouterr().err


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

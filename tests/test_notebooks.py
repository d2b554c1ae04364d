"""Every chapter runs on its own, as in Colab or Binder, and its notebook is in sync.

The standalone test copies a chapter's ``.ipynb`` into an empty temporary folder and executes
it there with only the package installed, the data location set and workshop mode on: nothing
from other chapters (no split, no models, no metrics) exists beforehand.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

from blgenre import notebooks
from blgenre.paths import PROJECT_ROOT

CHAPTERS = [md.stem for md in notebooks.chapter_sources()]


def test_notebooks_in_sync():
    assert notebooks.out_of_sync() == []


def test_check_catches_a_stale_notebook(tmp_path):
    shutil.copy(PROJECT_ROOT / "_toc.yml", tmp_path / "_toc.yml")
    (tmp_path / "chapters").mkdir()
    for page in notebooks.toc_pages():
        shutil.copy(PROJECT_ROOT / f"{page}.md", tmp_path / f"{page}.md")
    notebooks.sync(tmp_path)
    assert notebooks.out_of_sync(tmp_path) == []
    md = tmp_path / "chapters" / "baseline.md"
    md.write_text(md.read_text().replace("model, grid = baseline.train_baseline(train, valid)",
                                         "model, grid = baseline.train_baseline(train, train)"))
    (tmp_path / "chapters" / "intro.ipynb").unlink()
    assert sorted(notebooks.out_of_sync(tmp_path)) == [
        "chapters/baseline.ipynb: differs from baseline.md", "chapters/intro.ipynb: missing"]


@pytest.mark.standalone
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_alone(chapter, tmp_path, monkeypatch, real_data):
    from nbclient import NotebookClient

    work = tmp_path / "colab"
    work.mkdir()
    nb_path = work / f"{chapter}.ipynb"
    shutil.copy(PROJECT_ROOT / "chapters" / f"{chapter}.ipynb", nb_path)
    monkeypatch.setenv("BLGENRE_ARTIFACTS", str(work / "artifacts"))
    monkeypatch.setenv("BLGENRE_WORKSHOP", "1")
    monkeypatch.setenv("BLGENRE_DATA", str(real_data))
    nb = nbformat.read(nb_path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(work)}}).execute()
    seconds = time.perf_counter() - start
    print(f"standalone workshop run of {chapter}: {seconds:.0f} s")
    record = Path(os.environ.get("BLGENRE_TIMINGS", tmp_path.parent / "standalone.tsv"))
    with open(record, "a") as fh:
        fh.write(f"{chapter}\t{seconds:.1f}\n")

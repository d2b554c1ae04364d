"""Every chapter runs on its own, as in Colab or Binder, and its notebook is in sync.

The standalone runs themselves (an empty folder per chapter, its own process, workshop mode;
the chapters that only use models seeded with the training chapters' models) happen in the
background while the other tests run: see :mod:`background`.
"""

from __future__ import annotations

import os
import shutil

import pytest
from background import CHAPTERS, StandaloneRun, standalone_jobs, uses_models

from blgenre.book import notebooks
from blgenre.paths import PROJECT_ROOT


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
    md.write_text(md.read_text().replace("baseline_run = ensure(\"baseline\")",
                                         "baseline_run = ensure(\"baseline\", retrain=True)"))
    (tmp_path / "chapters" / "intro.ipynb").unlink()
    assert sorted(notebooks.out_of_sync(tmp_path)) == [
        "chapters/baseline.ipynb: differs from baseline.md", "chapters/intro.ipynb: missing"]


@pytest.fixture(scope="session")
def standalone_runs(measure) -> dict[str, StandaloneRun]:
    """Every selected chapter's standalone run (started in the background at collection)."""
    from conftest import background

    result = background().standalone.result()
    record = os.environ.get("BLGENRE_TIMINGS")
    if record:
        with open(record, "a") as fh:
            for run in result.values():
                fh.write(f"{run.chapter}\t{run.seconds:.1f}\t{standalone_jobs()} at a time\n")
    return result


@pytest.mark.standalone
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_alone(chapter, standalone_runs, measure):
    if chapter not in standalone_runs:
        pytest.fail(f"{chapter} did not run: a chapter that trains the models it uses failed")
    run = standalone_runs[chapter]
    seeded = ", seeded with the training chapters' models" if uses_models(chapter) else ""
    measure(f"standalone workshop run of {chapter}: {run.seconds:.0f} s "
            f"(chapters run {standalone_jobs()} at a time{seeded})")
    assert run.returncode == 0, f"{chapter} failed when run alone:\n{run.log[-6000:]}"


def test_pages_execute_in_toc_order():
    from blgenre.book.sphinxext import toc_order

    names = ["chapters/demo", "chapters/bibliography", "chapters/transformer", "chapters/intro",
             "chapters/zzz-not-in-toc"]
    toc_order(names, notebooks.toc_pages())
    assert names == ["chapters/intro", "chapters/transformer", "chapters/demo",
                     "chapters/bibliography", "chapters/zzz-not-in-toc"]

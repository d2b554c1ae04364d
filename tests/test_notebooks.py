"""Every chapter runs on its own, as in Colab or Binder, and its notebook is in sync.

The standalone test copies a chapter's ``.ipynb`` into an empty temporary folder and executes
it there (``jupyter nbconvert --execute``, in its own process) with only the package installed,
the data location set and workshop mode on: nothing from other chapters (no split, no models,
no metrics) exists beforehand. Chapters run two at a time to use both CPU cores.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from blgenre.book import notebooks
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
    md.write_text(md.read_text().replace("baseline_run = ensure(\"baseline\")",
                                         "baseline_run = ensure(\"baseline\", retrain=True)"))
    (tmp_path / "chapters" / "intro.ipynb").unlink()
    assert sorted(notebooks.out_of_sync(tmp_path)) == [
        "chapters/baseline.ipynb: differs from baseline.md", "chapters/intro.ipynb: missing"]


def standalone_jobs() -> int:
    """How many chapters run side by side (``BLGENRE_STANDALONE_JOBS``, default 2)."""
    return int(os.environ.get("BLGENRE_STANDALONE_JOBS", "2"))


@dataclass
class StandaloneRun:
    chapter: str
    seconds: float
    returncode: int
    log: str


def _run_alone(chapter: str, folder: Path, data: str, threads: int | None = None) -> StandaloneRun:
    """Execute one chapter's notebook in ``folder`` (empty but for the notebook), as Colab would.

    ``threads`` caps the CPU threads torch may use: two runs side by side, each with as many
    threads as the machine has cores, made the transformer's training seven times slower.
    """
    folder.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "chapters" / f"{chapter}.ipynb", folder / f"{chapter}.ipynb")
    env = {**os.environ, "BLGENRE_ARTIFACTS": str(folder / "artifacts"), "BLGENRE_WORKSHOP": "1",
           "BLGENRE_DATA": data}
    if threads:
        env |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                "TOKENIZERS_PARALLELISM": "false"}
    cmd = [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.timeout=900", "--ExecutePreprocessor.kernel_name=python3",
           "--output", f"{chapter}.executed.ipynb", f"{chapter}.ipynb"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    return StandaloneRun(chapter, time.perf_counter() - start, proc.returncode,
                         proc.stdout + proc.stderr)


@pytest.fixture(scope="session")
def standalone_runs(request, tmp_path_factory, real_data_session) -> dict[str, StandaloneRun]:
    """Run every selected chapter alone, ``BLGENRE_STANDALONE_JOBS`` (default 2) at a time.

    Each run is its own process with its own empty folder, so runs share nothing; running two
    at once, each on its share of the cores, only uses both CPU cores.
    """
    chapters = [item.callspec.params["chapter"] for item in request.session.items
                if getattr(item, "originalname", "") == "test_chapter_runs_alone"]
    base = tmp_path_factory.mktemp("standalone")
    jobs = standalone_jobs()
    threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # the later chapters, longer, go first
        runs = pool.map(lambda c: _run_alone(c, base / c / "colab", str(real_data_session), threads),
                        chapters[::-1])
        result = {run.chapter: run for run in runs}
    record = Path(os.environ.get("BLGENRE_TIMINGS", base / "standalone.tsv"))
    with open(record, "a") as fh:
        for run in result.values():
            fh.write(f"{run.chapter}\t{run.seconds:.1f}\t{jobs} at a time\n")
    return result


@pytest.mark.standalone
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_alone(chapter, standalone_runs, measure):
    run = standalone_runs[chapter]
    measure(f"standalone workshop run of {chapter}: {run.seconds:.0f} s "
            f"(chapters run {standalone_jobs()} at a time)")
    assert run.returncode == 0, f"{chapter} failed when run alone:\n{run.log[-6000:]}"


def test_pages_execute_in_toc_order():
    from blgenre.book.sphinxext import toc_order

    names = ["chapters/demo", "chapters/bibliography", "chapters/transformer", "chapters/intro",
             "chapters/zzz-not-in-toc"]
    toc_order(names, notebooks.toc_pages())
    assert names == ["chapters/intro", "chapters/transformer", "chapters/demo",
                     "chapters/bibliography", "chapters/zzz-not-in-toc"]

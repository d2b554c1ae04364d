"""Every chapter runs on its own, as in Colab or Binder, and its notebook is in sync.

The standalone test copies a chapter's ``.ipynb`` into an empty temporary folder and executes
it there (``jupyter nbconvert --execute``, in its own process) with only the package installed,
the data location set and workshop mode on. Chapters run two at a time to use both CPU cores.

First every chapter that trains a model (the ``chapter`` of each registered kind) and every
chapter that needs none runs from an empty folder. Then the chapters that only *use* the
models run, each in its own folder seeded with the workshop models (and their split and
metrics) that the training chapters just produced, as a reader who ran those chapters first
would have: the lifecycle reuses them because split, mode, settings and version match. This
keeps every training chapter's run complete while nothing is trained twice.
"""

from __future__ import annotations

import os
import re
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


def chapter_label(chapter: str) -> str:
    """The ``(label)=`` a chapter's file starts with (what ``Kind.chapter`` names)."""
    found = re.search(r"^\(([^)]+)\)=", (PROJECT_ROOT / "chapters" / f"{chapter}.md").read_text(),
                      re.MULTILINE)
    return found.group(1) if found else chapter


def trains_models(chapter: str) -> bool:
    """Whether ``chapter`` is where a registered kind of model is trained."""
    from blgenre.models import registry

    return chapter_label(chapter) in {kind.chapter for kind in registry.KINDS.values()}


def uses_models(chapter: str) -> bool:
    """Whether ``chapter`` only uses models that other chapters train (it calls ``ensure``)."""
    text = (PROJECT_ROOT / "chapters" / f"{chapter}.md").read_text()
    return not trains_models(chapter) and re.search(r"\bensure(_models)?\(", text) is not None


def seed_artifacts(runs: dict[str, Path], seed: Path) -> Path:
    """Gather the split and each kind's model, metrics and predictions from its chapter's run."""
    from blgenre.models import registry

    by_label = {chapter_label(chapter): folder for chapter, folder in runs.items()}
    seed.mkdir(parents=True, exist_ok=True)
    for kind in map(registry.get, registry.names()):  # the models the other chapters use
        source = by_label[kind.chapter] / "artifacts"
        for part in ("split.csv", "split.json"):
            if not (seed / part).exists():
                shutil.copy(source / part, seed / part)
        shutil.copytree(source / "models" / kind.name, seed / "models" / kind.name)
        for sub, suffix in (("metrics", ".json"), ("predictions", ".csv")):
            (seed / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy(source / sub / f"{kind.name}{suffix}", seed / sub / f"{kind.name}{suffix}")
    return seed


def _run_alone(chapter: str, folder: Path, data: str, threads: int | None = None,
               seed: Path | None = None) -> StandaloneRun:
    """Execute one chapter's notebook in ``folder`` (empty but for the notebook), as Colab would.

    ``threads`` caps the CPU threads torch may use: two runs side by side, each with as many
    threads as the machine has cores, made the transformer's training seven times slower.
    ``seed``, for chapters that only use models, is copied in as the folder's ``artifacts/``.
    """
    folder.mkdir(parents=True)
    if seed is not None:
        shutil.copytree(seed, folder / "artifacts")
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
    data = str(real_data_session)
    first = [c for c in chapters if not uses_models(c)]
    if any(uses_models(c) for c in chapters):  # the chapters that train the models run first
        first += [c for c in CHAPTERS if trains_models(c) and c not in first]
    with ThreadPoolExecutor(max_workers=jobs) as pool:  # the later chapters, longer, go first
        runs = pool.map(lambda c: _run_alone(c, base / c / "colab", data, threads), first[::-1])
        result = {run.chapter: run for run in runs}
        then = [c for c in chapters if uses_models(c)]
        if then and all(result[c].returncode == 0 for c in first if trains_models(c)):
            seed = seed_artifacts({c: base / c / "colab" for c in first}, base / "seed")
            runs = pool.map(lambda c: _run_alone(c, base / c / "colab", data, threads, seed),
                            then[::-1])
            result |= {run.chapter: run for run in runs}
    record = Path(os.environ.get("BLGENRE_TIMINGS", base / "standalone.tsv"))
    with open(record, "a") as fh:
        for run in result.values():
            fh.write(f"{run.chapter}\t{run.seconds:.1f}\t{jobs} at a time\n")
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

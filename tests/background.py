"""The test suite's long work, run in the background while the other tests run.

Two kinds of long work check the book as a whole:

- **standalone runs**: every chapter's notebook executed alone, as in Colab, in an empty folder
  with only the package installed, the data location set and workshop mode on
  (``jupyter nbconvert --execute``, its own process), two at a time;
- **the book build**: ``jupyter-book build -W -n --keep-going --all``, every chapter executed.

Nothing is trained twice. First the chapters that train a model (the ``chapter`` of each
registered kind) run alone from empty folders. Their workshop models
(with the split, metrics and predictions) then seed both the standalone runs of the chapters that
only *use* models, each in its own folder, and the test build of the book, which runs in workshop
mode into ``_build/workshop/`` (its own ``artifacts/``): the lifecycle reuses the models there
because split, mode, settings and version match, as it would for a reader who ran the training
chapters first. The chapters that need no model run alone beside them. ``make book`` still
builds the published book with the full settings into ``_build/html``; the tests never touch
that, nor ``artifacts/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from blgenre.book import notebooks
from blgenre.paths import PROJECT_ROOT

CHAPTERS = [md.stem for md in notebooks.chapter_sources()]
#: Where the test build of the book goes (``jupyter-book build --path-output``).
BOOK_ROOT = PROJECT_ROOT / "_build" / "workshop"
BOOK_HTML = BOOK_ROOT / "_build" / "html"
BOOK_ARTIFACTS = BOOK_ROOT / "artifacts"


def standalone_jobs() -> int:
    """How many chapters run side by side (``BLGENRE_STANDALONE_JOBS``, default 2)."""
    return int(os.environ.get("BLGENRE_STANDALONE_JOBS", "2"))


@dataclass
class StandaloneRun:
    chapter: str
    seconds: float
    returncode: int
    log: str


@dataclass
class BookBuild:
    seconds: float
    returncode: int
    log: str
    seeded: bool


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


def thread_env(threads: int | None) -> dict[str, str]:
    """Cap the CPU threads torch may use: runs side by side, each with as many threads as the
    machine has cores, made the transformer's training three to seven times slower."""
    if not threads:
        return {}
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false"}


def workshop_env(artifacts: Path, data: str, threads: int | None = None) -> dict[str, str]:
    """The environment of a workshop-mode run writing into ``artifacts``."""
    return {**os.environ, "BLGENRE_ARTIFACTS": str(artifacts), "BLGENRE_WORKSHOP": "1",
            "BLGENRE_DATA": data, **thread_env(threads)}


def run_alone(chapter: str, folder: Path, data: str, threads: int | None = None,
              seed: Path | None = None) -> StandaloneRun:
    """Execute one chapter's notebook in ``folder`` (empty but for the notebook), as Colab would.

    ``seed``, for chapters that only use models, is copied in as the folder's ``artifacts/``.
    """
    folder.mkdir(parents=True)
    if seed is not None:
        shutil.copytree(seed, folder / "artifacts")
    shutil.copy(PROJECT_ROOT / "chapters" / f"{chapter}.ipynb", folder / f"{chapter}.ipynb")
    env = workshop_env(folder / "artifacts", data, threads)
    cmd = [sys.executable, "-m", "nbconvert", "--to", "notebook", "--execute",
           "--ExecutePreprocessor.timeout=900", "--ExecutePreprocessor.kernel_name=python3",
           "--output", f"{chapter}.executed.ipynb", f"{chapter}.ipynb"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True)
    return StandaloneRun(chapter, time.perf_counter() - start, proc.returncode,
                         proc.stdout + proc.stderr)


def export_models(chapter: str, folder: Path, data: str, threads: int | None = None) -> None:
    """The ONNX exports (and their checks) of the models ``chapter`` trained, into its folder,
    and the transformer's student (:mod:`blgenre.models.transformer_student`).

    Done once here, beside the other training runs, so that the seed carries them: otherwise
    the book build, and the standalone runs of 'Inference at scale' and 'Demo apps', would each
    export and check the transformer again (about 45 s each on one core).
    """
    from blgenre.models import registry

    kinds = [k.name for k in map(registry.get, registry.names())
             if k.onnx and k.chapter == chapter_label(chapter)]
    if not kinds:
        return
    env = workshop_env(folder / "artifacts", data, threads)
    code = ("from blgenre.models.onnx_export import ensure_onnx\n"
            f"for name in {kinds!r}:\n    ensure_onnx(name)\n")
    if "transformer" in kinds:  # and its student, which 'Inference at scale' would teach
        code += "from blgenre.models.transformer_student import ensure_student\nensure_student()\n"
    subprocess.run([sys.executable, "-c", code], cwd=folder, env=env, check=True,
                   capture_output=True, text=True)


def train_alone(chapter: str, folder: Path, data: str, threads: int | None = None) -> StandaloneRun:
    """:func:`run_alone` for a chapter that trains models, then :func:`export_models`."""
    run = run_alone(chapter, folder, data, threads)
    if run.returncode == 0:
        try:
            export_models(chapter, folder, data, threads)
        except subprocess.CalledProcessError as exc:
            return StandaloneRun(chapter, run.seconds, exc.returncode,
                                 f"{run.log}\nONNX export after the run failed:\n{exc.stderr}")
    return run


def build_book(data: str, seed: Path | None, threads: int | None = None) -> BookBuild:
    """The book in workshop mode into :data:`BOOK_ROOT`, from nothing but ``seed`` (if given)."""
    shutil.rmtree(BOOK_ROOT, ignore_errors=True)
    BOOK_ROOT.mkdir(parents=True)
    if seed is not None:
        shutil.copytree(seed, BOOK_ARTIFACTS)
    env = workshop_env(BOOK_ARTIFACTS, data, threads)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb), "build", ".", "--path-output", str(BOOK_ROOT), "-W", "-n", "--keep-going",
           "--all"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    return BookBuild(time.perf_counter() - start, proc.returncode, proc.stdout + proc.stderr,
                     seed is not None)


class Background:
    """The standalone runs of ``chapters`` and (if ``book``) the book build, in a thread; the
    training chapters' runs also when only their models (``seed``) are wanted.

    Started once per test session (``conftest.pytest_collection_modifyitems``); the fixtures
    wait for :attr:`standalone` and :attr:`book`.
    """

    def __init__(self, chapters: list[str], book: bool, data: str, workdir: Path,
                 seed: bool = False):
        self.standalone: Future = Future()
        self.book: Future = Future()
        self.seed: Future = Future()  # the training chapters' models, before the book is built
        self.chapters, self.want_book, self.data, self.workdir = chapters, book, data, workdir
        self.want_seed = seed
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # noqa: BLE001 - reported to whichever test waits
            for future in (self.standalone, self.book, self.seed):
                if not future.done():
                    future.set_exception(exc)

    def _work(self) -> None:
        jobs = standalone_jobs()
        threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
        base, data = self.workdir, self.data
        first = [c for c in self.chapters if not uses_models(c) and not trains_models(c)]
        then = [c for c in self.chapters if uses_models(c)]
        training = [c for c in CHAPTERS if trains_models(c)
                    and (c in self.chapters or then or self.want_book or self.want_seed)]
        result: dict[str, StandaloneRun] = {}
        with ThreadPoolExecutor(max_workers=jobs) as pool:  # the longest first
            runs = pool.map(lambda c: train_alone(c, base / c / "colab", data, threads),
                            training[::-1])
            result |= {run.chapter: run for run in runs}
        seed = (seed_artifacts({c: base / c / "colab" for c in training}, base / "seed")
                if training and all(result[c].returncode == 0 for c in training) else None)
        self.seed.set_result(seed)
        # then the book build (one thread) beside the other chapters' runs: one process more
        # than cores, each on one thread, keeps both cores busy without threads waiting on
        # each other
        with ThreadPoolExecutor(max_workers=1) as solo:
            book = (solo.submit(build_book, data, seed, 1 if first or then else None)
                    if self.want_book else None)
            with ThreadPoolExecutor(max_workers=jobs) as pool:
                later = first[::-1] + (then[::-1] if seed is not None else [])
                runs = pool.map(lambda c: run_alone(c, base / c / "colab", data, threads,
                                                    seed if uses_models(c) else None), later)
                result |= {run.chapter: run for run in runs}
            self.standalone.set_result(result)
            if book is not None:
                self.book.set_result(book.result())

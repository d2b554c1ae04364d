"""Shared fixtures: the real data's location, a temporary artifacts folder, small made-up data."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from blgenre.paths import PROJECT_ROOT

# The real data: BLGENRE_DATA if set, else the workplace's shared copy beside the checkout.
if "BLGENRE_DATA" not in os.environ:
    for candidate in (PROJECT_ROOT.parent / "shared" / "data",):
        if (candidate / "train_valid.csv").is_file():
            os.environ["BLGENRE_DATA"] = str(candidate)
# Tests never write into the book's own artifacts/, which the book build (run in the background,
# see below) is filling: the session gets its own, and a test that needs the book's outputs asks
# for them (the ``book_artifacts`` fixture).
os.environ.setdefault("BLGENRE_ARTIFACTS", tempfile.mkdtemp(prefix="blgenre-test-artifacts-"))
# Never wait on the network in tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


_MEASUREMENTS: list[str] = []


@pytest.fixture(scope="session")
def measure():
    """Record a measurement (a timing, a latency) to print in the test run's summary."""
    return _MEASUREMENTS.append


def pytest_terminal_summary(terminalreporter):
    if _MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in _MEASUREMENTS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def real_data_session() -> Path:
    """Folder holding the real British Library CSV (skips if there is none)."""
    folder = os.environ.get("BLGENRE_DATA")
    if not folder or not (Path(folder) / "train_valid.csv").is_file():
        pytest.skip("BLGENRE_DATA does not point at the British Library data")
    return Path(folder)


@pytest.fixture
def real_data(real_data_session) -> Path:
    """The same folder, for function-scoped tests."""
    return real_data_session


@pytest.fixture
def tmp_artifacts(tmp_path, monkeypatch) -> Path:
    """Point ``artifacts/`` at a temporary folder for the duration of a test."""
    folder = tmp_path / "artifacts"
    monkeypatch.setenv("BLGENRE_ARTIFACTS", str(folder))
    return folder


FICTION = ["The {} of {}. A novel", "{} and {}: a tale", "Poems of {} and {}", "The {} romance of {}"]
NONFICTION = ["A history of {} in {}", "Report on the {} of {}", "A treatise on {} and {}",
              "Travels in {}: an account of {}"]
WORDS = ["Scotland", "Norway", "steam", "love", "the moor", "London", "silver", "the sea",
         "railways", "the castle", "geology", "Venice", "the parish", "war", "Holland"]


def make_rows(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Catalogue-shaped rows with made-up titles whose genre a model can learn."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n):
        fiction = i % 3 == 0
        pattern = rng.choice(FICTION if fiction else NONFICTION)
        title = pattern.format(rng.choice(WORDS), rng.choice(WORDS)) + f" vol. {i}"
        rows.append({
            "BL record ID": f"{i:09d}",
            "Title": title,
            "annotator_genre": "Fiction" if fiction else "Non-fiction",
            "Date of publication": str(1800 + i % 100),
            "Languages": rng.choice(["English", "English", "German", "Dutch ; English"]),
            "annotated": "True",
        })
    return pd.DataFrame(rows)


@pytest.fixture
def rows() -> pd.DataFrame:
    return make_rows()


@pytest.fixture
def csv_file(tmp_path, rows) -> Path:
    path = tmp_path / "train_valid.csv"
    rows.to_csv(path, index=False)
    return path


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (skips if absent, fails where required)."""
    from blgenre.sharing.screenshot import CHROMIUM_ARGS, chromium_path

    path = chromium_path()
    if path is None:
        message = "chromium is not installed (run `make browser`)"
        if os.environ.get("BLGENRE_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


# ---------------------------------------------------------------------------- the book build
#: Fixtures through which a test needs the built book (directly or, in CI, to get its models).
BOOK_FIXTURES = {"built_book", "book_artifacts", "book_html"}
_BUILD: dict = {}


def _needs_build(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    if "built_book" in names:
        return True
    if "book_artifacts" in names:
        return bool(os.environ.get("CI"))
    return "book_html" in names and not os.environ.get("BLGENRE_TEST_BOOK_HTML")


def _book_env() -> dict:
    # as `make book` would: whatever a test module points elsewhere does not leak in
    return {k: v for k, v in os.environ.items() if k not in ("BLGENRE_ARTIFACTS", "BLGENRE_WORKSHOP")}


def _start_build() -> None:
    """Start ``make book``'s two steps in a child process (its output goes to a temporary log)."""
    log = Path(tempfile.gettempdir()) / f"blgenre-book-build-{os.getpid()}.log"
    jb = Path(sys.executable).with_name("jupyter-book")
    script = (f'"{sys.executable}" -m blgenre.book.buildtools prepare && '
              f'"{jb}" build . -W -n --keep-going --all')
    handle = open(log, "w")
    _BUILD.update(start=time.perf_counter(), log=log, handle=handle,
                  proc=subprocess.Popen(["sh", "-c", script], cwd=PROJECT_ROOT, env=_book_env(),
                                        stdout=handle, stderr=subprocess.STDOUT))


def pytest_collection_modifyitems(session, config, items):
    """Start the book build at once, in the background, and run the tests that need it last.

    The build runs chapters one after the other and much of it (Sphinx, the fastai model's
    one-thread training, small chapters) keeps only one core busy; meanwhile every other test,
    the standalone chapter runs among them, uses the rest of the machine.
    """
    needs = [item for item in items if BOOK_FIXTURES & set(getattr(item, "fixturenames", ()))]
    items[:] = [item for item in items if item not in needs] + needs
    data = os.environ.get("BLGENRE_DATA")
    if (any(_needs_build(item) for item in needs) and not config.option.collectonly
            and data and (Path(data) / "train_valid.csv").is_file()):
        _start_build()


def pytest_unconfigure(config):
    proc = _BUILD.get("proc")
    if proc is not None and proc.poll() is None:  # the session was interrupted
        proc.terminate()


@pytest.fixture(scope="session")
def built_book(real_data_session, measure) -> Path:
    """The book, built once per test session as ``make book`` does; its HTML folder.

    This executes every chapter whose cached result is stale, so afterwards ``artifacts/``
    holds the book's real split, models and metrics. The build normally started in the
    background when the tests were collected (see :func:`pytest_collection_modifyitems`).
    """
    if not _BUILD:
        _start_build()
    returncode = _BUILD["proc"].wait()
    _BUILD["handle"].close()
    measure(f"book build (-W, executing changed chapters; in the background beside the other "
            f"tests): {time.perf_counter() - _BUILD['start']:.0f} s")
    log = Path(_BUILD["log"]).read_text(errors="replace")
    assert returncode == 0, "book build failed:\n" + log[-8000:]
    return PROJECT_ROOT / "_build" / "html"


@pytest.fixture(scope="session")
def book_artifacts(request) -> Path:
    """The book's ``artifacts/``: in CI the book is built first; elsewhere, as the checkout has it."""
    if os.environ.get("CI"):
        request.getfixturevalue("built_book")
    return PROJECT_ROOT / "artifacts"

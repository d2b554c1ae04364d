"""Shared fixtures: the real data's location, a temporary artifacts folder, small made-up data."""

from __future__ import annotations

import os
import tempfile
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
# (this module is imported more than once, as ``conftest`` and ``tests.conftest``: one folder)
_OWN_ARTIFACTS = "BLGENRE_ARTIFACTS" not in os.environ
if _OWN_ARTIFACTS:
    os.environ["BLGENRE_ARTIFACTS"] = tempfile.mkdtemp(prefix="blgenre-test-artifacts-")
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


# ------------------------------------------------------- the long work, in the background
#: Fixtures through which a test waits for the background: the book build or the seed models.
BOOK_FIXTURES = {"built_book", "book_artifacts", "book_html", "seed_models"}
_BACKGROUND: list = []


def _needs_build(item) -> bool:
    names = set(getattr(item, "fixturenames", ()))
    return bool(names & {"built_book", "book_artifacts"}) or (
        "book_html" in names and not os.environ.get("BLGENRE_TEST_BOOK_HTML"))


def _standalone_chapter(item) -> str | None:
    if getattr(item, "originalname", "") == "test_chapter_runs_alone":
        return item.callspec.params["chapter"]
    return None


def pytest_collection_modifyitems(session, config, items):
    """The tests that wait for the background work (:mod:`background`) run last."""
    late = [item for item in items if BOOK_FIXTURES & set(getattr(item, "fixturenames", ()))
            or _standalone_chapter(item)]
    items[:] = [item for item in items if item not in late] + late


def pytest_collection_finish(session):
    """Start the standalone chapter runs and the book build that the selected tests need, at
    once, in the background; the other tests run meanwhile."""
    from background import Background

    chapters = [c for c in map(_standalone_chapter, session.items) if c]
    book = any(_needs_build(item) for item in session.items)
    seed = any("seed_models" in getattr(item, "fixturenames", ()) for item in session.items)
    data = os.environ.get("BLGENRE_DATA")
    if ((chapters or book or seed) and not session.config.option.collectonly and data
            and (Path(data) / "train_valid.csv").is_file()):
        workdir = Path(tempfile.mkdtemp(prefix="blgenre-standalone-"))
        _BACKGROUND.append(Background(chapters, book, data, workdir, seed))


def pytest_sessionfinish(session, exitstatus):
    """Remove the session's scratch folders: the standalone runs leave several GB (models, ONNX
    files, executed notebooks), and repeated test runs once filled the disk. After an interrupted
    run the background may still be writing, so they are left there (the path is printed)."""
    import shutil

    folders = [work.workdir for work in _BACKGROUND]
    if _OWN_ARTIFACTS:
        folders.append(Path(os.environ["BLGENRE_ARTIFACTS"]))
    if exitstatus == pytest.ExitCode.INTERRUPTED:
        print("left behind (interrupted):", *map(str, folders))
        return
    for work in _BACKGROUND:
        work.thread.join()
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def background():
    """The session's background work (fails the test if it was never started: no data)."""
    if not _BACKGROUND:
        pytest.skip("BLGENRE_DATA does not point at the British Library data")
    return _BACKGROUND[0]


@pytest.fixture(scope="session")
def built_book(real_data_session, measure) -> Path:
    """The book built in workshop mode into ``_build/workshop/`` (see :mod:`background`); its HTML.

    Afterwards ``_build/workshop/artifacts/`` holds the build's split, models and metrics.
    """
    from background import BOOK_HTML

    build = background().book.result()
    seeded = ", seeded with the training chapters' standalone models" if build.seeded else ""
    measure(f"book build (workshop mode, -W{seeded}; beside the other tests): "
            f"{build.seconds:.0f} s")
    assert build.returncode == 0, "book build failed:\n" + build.log[-8000:]
    return BOOK_HTML


@pytest.fixture(scope="session")
def seed_models(real_data_session, tmp_path_factory) -> Path:
    """A copy of the workshop models the book build starts from (``artifacts/models``).

    They are the book's models (the build reuses them: ``test_book`` checks), ready before the
    book is built, so the tests that only need trained models run while it builds: once the
    standalone runs are done, when the book build (one thread) leaves a core free. A copy: the
    background still reads the seed, and loading a model may add files to its folder.
    """
    import shutil

    seed = background().seed.result()
    if background().want_book:
        try:
            background().standalone.result()
        except Exception:  # noqa: BLE001 - reported by the standalone tests themselves
            pass
    if seed is None:
        pytest.fail("a chapter that trains a model failed its standalone run (see test_notebooks)")
    return Path(shutil.copytree(seed / "models", tmp_path_factory.mktemp("seed") / "models"))


@pytest.fixture(scope="session")
def book_artifacts(built_book) -> Path:
    """The test build's ``artifacts/`` (its split, its models, its Hub folders)."""
    from background import BOOK_ARTIFACTS

    return BOOK_ARTIFACTS

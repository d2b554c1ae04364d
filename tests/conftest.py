"""Shared fixtures: the real data's location, a temporary artifacts folder, small made-up data."""

from __future__ import annotations

import os
import subprocess
import sys
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


@pytest.fixture(scope="session")
def built_book(real_data_session, measure) -> Path:
    """Build the book once per test session, as ``make book`` does; its HTML folder.

    This executes every chapter whose cached result is stale, so afterwards ``artifacts/``
    holds the book's real split, models and metrics.
    """
    # as `make book` would: whatever a test module has pointed elsewhere does not leak in
    env = {k: v for k, v in os.environ.items() if k not in ("BLGENRE_ARTIFACTS", "BLGENRE_WORKSHOP")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "blgenre.book.buildtools", "prepare"], check=True,
                   cwd=PROJECT_ROOT, env=env)
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", ".", "-W", "-n", "--keep-going", "--all"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, env=env)
    measure(f"book build (-W, executing changed chapters): {time.perf_counter() - start:.0f} s")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, "book build failed:\n" + log[-8000:]
    return PROJECT_ROOT / "_build" / "html"

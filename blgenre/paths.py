"""Where the book keeps what it reads and what it produces.

Everything a build produces lives under ``artifacts/`` (git-ignored). The folder can be moved
with the ``BLGENRE_ARTIFACTS`` environment variable, which the tests use to work in a
temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent


def artifacts_dir(*parts: str, create: bool = True) -> Path:
    """Return ``artifacts/<parts>``, creating the folder unless ``create`` is false."""
    root = Path(os.environ.get("BLGENRE_ARTIFACTS", PROJECT_ROOT / "artifacts"))
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir(name: str) -> Path:
    """Folder of a trained model, e.g. ``artifacts/models/baseline``."""
    return artifacts_dir("models", name)


def metrics_path(name: str) -> Path:
    """JSON file holding a model's test-set metrics."""
    return artifacts_dir("metrics") / f"{name}.json"


def predictions_path(name: str) -> Path:
    """CSV file holding a model's test-set predictions, one row per test title."""
    return artifacts_dir("predictions") / f"{name}.csv"


def figure_path(name: str) -> Path:
    """PNG file for a figure produced by a chapter."""
    return artifacts_dir("figures") / name

"""Where the book keeps what it reads and what it produces.

Everything a build produces lives under ``artifacts/`` (git-ignored): in the book's checkout
when the package is used from there, otherwise (e.g. installed from the repository in Colab) in
the current folder. ``BLGENRE_ARTIFACTS`` moves it; the tests use that to work in a temporary
folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
#: True when the package runs from the book's own checkout (not an installed copy).
IN_CHECKOUT = (PROJECT_ROOT / "_config.yml").is_file()


def artifacts_dir(*parts: str, create: bool = True) -> Path:
    """Return ``artifacts/<parts>``, creating the folder unless ``create`` is false."""
    default = PROJECT_ROOT / "artifacts" if IN_CHECKOUT else Path.cwd() / "artifacts"
    root = Path(os.environ.get("BLGENRE_ARTIFACTS", default))
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

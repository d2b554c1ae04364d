"""What every saved model looks like, and loading any of them from its folder.

A model folder holds a ``model.json`` with at least ``kind`` (``baseline``, ``fastai`` or
``transformer``), ``labels`` and ``files`` (file name -> sha256). Each kind's class has a
``load(folder)`` class method and a ``predict_proba(titles)`` method that returns an array of
shape (n, 2): the probabilities of Fiction and Non-fiction.
"""

from __future__ import annotations

import importlib
import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np

from .errors import ModelError
from .integrity import sha256_file, verify_sha256

META_FILE = "model.json"
KINDS = {
    "baseline": ("blgenre.baseline", "BaselineModel", "A baseline (chapter 'A baseline')"),
    "fastai": ("blgenre.fastai_model", "FastaiModel", "chapter 'Training a fastai ULMFiT model'"),
    "transformer": ("blgenre.transformer_model", "TransformerModel",
                    "chapter 'Fine-tuning a transformer'"),
}


class Classifier(Protocol):
    """Interface shared by the book's models."""

    meta: dict

    def predict_proba(self, titles: list[str]) -> np.ndarray: ...


def read_meta(folder: str | Path) -> dict:
    """``model.json`` of a model folder, with a clear error if the folder is not a model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder. Train it first, or check the path.")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {META_FILE}); a chapter of the book "
                         "writes one when it saves a model")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: not valid JSON ({exc})") from None
    if meta.get("kind") not in KINDS:
        raise ModelError(f"{meta_path}: unknown model kind {meta.get('kind')!r}; "
                         f"expected one of {sorted(KINDS)}")
    return meta


def verify_files(folder: str | Path, meta: dict) -> None:
    """Check every file listed in ``meta['files']`` against its recorded sha256."""
    for name, digest in meta.get("files", {}).items():
        verify_sha256(Path(folder) / name, digest)


def write_meta(folder: str | Path, kind: str, files: list[str], **info) -> dict:
    """Write ``model.json`` with hashes of ``files`` and the software versions of this run."""
    folder = Path(folder)
    from . import runinfo

    meta = {
        "kind": kind,
        "labels": ["Fiction", "Non-fiction"],
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "versions": runinfo.versions(),
        "files": {name: sha256_file(folder / name) for name in files},
        **info,
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return meta


def load_model(folder: str | Path) -> Classifier:
    """Load any of the book's models from its folder, verifying its files first."""
    meta = read_meta(folder)
    module, cls, _ = KINDS[meta["kind"]]
    verify_files(folder, meta)
    return getattr(importlib.import_module(module), cls).load(Path(folder))


def missing_model_message(kind: str, folder: str | Path) -> str:
    """What to tell a reader whose model folder does not exist yet."""
    return f"no {kind} model in {folder}: build the book or run the {KINDS[kind][2]} first"


#: Functions that load a model (and its test metrics) if a chapter already made them, and train,
#: save and evaluate it otherwise.
ENSURE = {
    "baseline": ("blgenre.baseline", "ensure_baseline"),
    "fastai": ("blgenre.fastai_model", "ensure_fastai"),
    "transformer": ("blgenre.transformer_model", "ensure_transformer"),
}


def ensure_models(names: tuple[str, ...] = tuple(ENSURE)) -> dict[str, str]:
    """Make sure every model in ``names`` is trained, saved and scored; say what was done.

    A chapter that needs the models calls this, so it also runs on its own (in Colab, say): a
    model an earlier chapter saved is loaded; a missing one is trained now (quickly in workshop
    mode, see :mod:`blgenre.settings`).
    """
    import time

    from .evaluate import load_metrics
    from .paths import model_dir

    done = {}
    for name in names:
        had = (model_dir(name) / META_FILE).is_file() and load_metrics(name) is not None
        start = time.perf_counter()
        module, func = ENSURE[name]
        getattr(importlib.import_module(module), func)()
        seconds = time.perf_counter() - start
        done[name] = (f"loaded from artifacts/models/{name}" if had
                      else f"not found, so trained and evaluated now ({seconds:.0f} s)")
        print(f"{name}: {done[name]}")
    return done

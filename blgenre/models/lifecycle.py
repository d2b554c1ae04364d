"""One lifecycle for every kind of model: save, check, load, and decide when to reuse.

A model folder holds a ``model.json`` with at least ``kind`` (a name in
:mod:`blgenre.models.registry`), ``labels`` and ``files`` (file name -> sha256), plus the
*stamp* of the run that trained it (:func:`run_stamp`). Loading checks every listed file
against its hash before anything is unpickled, and refuses a pickled kind whose main file is
not listed at all, since an empty ``files`` would otherwise skip the check.

:func:`ensure` is the one rule for reuse, used by the model chapters and by every chapter that
only needs the models: a saved model is reused only if its stamp (the split's sha256, workshop
or full mode, the kind's settings and the package version) equals this run's; otherwise it is
trained on the split, saved, and scored once on the test split. It says which happened, and why.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from blgenre.errors import ModelError
from blgenre.integrity import sha256_file, verify_sha256
from blgenre.models import registry

META_FILE = "model.json"


class Classifier(Protocol):
    """Interface shared by the book's models (each registered kind's class)."""

    meta: dict

    def predict_proba(self, titles: list[str]) -> np.ndarray:
        """One row per title, one column per label in ``meta["labels"]`` order."""
        ...


# --------------------------------------------------------------------------- model.json
def read_meta(folder: str | Path) -> dict:
    """``model.json`` of a model folder, with a one-line error if the folder is not a model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder. Train it first, or check the path.")
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise ModelError(f"{folder}: not a model folder (no {META_FILE}); a chapter of the book "
                         "writes one when it saves a model")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelError(f"{meta_path}: not a text file (not UTF-8); restore it or retrain the "
                         "model") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{meta_path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ModelError(f"{meta_path}: expected a JSON object, found {type(meta).__name__}")
    if meta.get("kind") not in registry.KINDS:
        raise ModelError(f"{meta_path}: unknown model kind {meta.get('kind')!r}; "
                         f"expected one of {sorted(registry.KINDS)}")
    if not isinstance(meta.get("files", {}), dict):
        raise ModelError(f"{meta_path}: 'files' must map file names to sha256 digests")
    return meta


def add_to_meta(folder: str | Path, key: str, value) -> dict:
    """Set ``key`` in a saved model's ``model.json`` and return it: the records made after the
    model was saved (its ONNX export, the checks of its cheaper copies) live beside it there."""
    meta = read_meta(folder)
    meta[key] = value
    # written beside it, then renamed over it: another process reading the model at that moment
    # (``predict --streams``, where each loads it and may record a check or a timing) sees the
    # old file or the new one, never a half-written one
    tmp = Path(folder) / f".{META_FILE}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(meta, indent=2, default=str))
    os.replace(tmp, Path(folder) / META_FILE)
    return meta


def verify_files(folder: str | Path, meta: dict) -> None:
    """Check every file listed in ``meta['files']`` against its recorded sha256.

    A kind whose main file is a pickle must list it: the hash is what stands between a
    tampered or corrupted pickle and running its code. (It protects against corruption and
    against replacing the pickle alone, not against someone who can rewrite both files.)
    """
    kind = registry.get(meta["kind"])
    files = meta.get("files", {})
    if kind.pickled and kind.main_file not in files:
        raise ModelError(f"{Path(folder) / META_FILE}: does not list {kind.main_file} with its "
                         "sha256, so the book will not unpickle it; retrain the model")
    for name, digest in files.items():
        if Path(name).name != name:
            raise ModelError(f"{Path(folder) / META_FILE}: file name {name!r} leaves the folder")
        verify_sha256(Path(folder) / name, digest)


def versions() -> dict[str, str]:
    """Versions of the packages a saved model depends on (see :mod:`blgenre.runinfo`)."""
    from blgenre import runinfo

    return runinfo.versions()


#: Keys of ``model.json`` that :func:`write_meta` computes itself.
COMPUTED_KEYS = ("kind", "python", "versions", "files")


def model_labels(meta: dict) -> list[str]:
    """A model's labels, in the order of its probability columns (default: the book's two)."""
    from blgenre.data import LABELS

    return list(meta.get("labels") or LABELS)


def label_set(labels) -> list[str]:
    """The labels a model learns from training labels ``labels``: each once, sorted.

    For the book's data this is ``["Fiction", "Non-fiction"]``, the order of ``LABELS``.
    """
    return sorted({str(label) for label in labels})


def training_info(meta: dict) -> dict:
    """What a model learned about its own training (``meta`` minus the computed keys)."""
    return {k: v for k, v in meta.items() if k not in COMPUTED_KEYS}


def write_meta(folder: str | Path, kind: str, files: list[str], **info) -> dict:
    """Write ``model.json`` with hashes of ``files`` and the software versions of this run."""
    folder = Path(folder)
    meta = {
        "kind": kind,
        "labels": model_labels(info),
        "python": platform.python_version(),
        "versions": versions(),
        "files": {name: sha256_file(folder / name) for name in files},
        **{k: v for k, v in info.items() if k != "labels"},
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2, default=str))
    return meta


def checked_meta(folder: str | Path, kind: str) -> dict:
    """``model.json`` of a folder that must hold a ``kind`` model, after checking its files.

    Every kind's ``load`` calls this before it opens (and, for pickles, runs) anything.
    """
    meta = read_meta(folder)
    if meta["kind"] != kind:
        raise ModelError(f"{folder}: a {meta['kind']!r} model, not a {kind!r} model")
    verify_files(folder, meta)
    return meta


def load_model(folder: str | Path) -> Classifier:
    """Load any of the book's models from its folder (its class checks the files first)."""
    meta = read_meta(folder)
    return registry.get(meta["kind"]).model_class().load(Path(folder))


def missing_model_message(kind: str, folder: str | Path) -> str:
    """What to tell a reader whose model folder does not exist yet."""
    return registry.get(kind).missing_message(folder)


# --------------------------------------------------------------------------- reuse
def package_version() -> str:
    """The installed ``blgenre`` version (part of the reuse stamp)."""
    try:
        return importlib.metadata.version("blgenre")
    except importlib.metadata.PackageNotFoundError:
        from blgenre import __version__

        return __version__


def run_stamp(name: str) -> dict:
    """What a saved model of kind ``name`` must have been trained with to be reused now."""
    from blgenre import settings
    from blgenre.data import split

    cls = registry.get(name).model_class()
    return {
        "split_sha256": split.split_info()["split_sha256"],
        "mode": "workshop" if settings.workshop() else "full",
        "settings": json.loads(json.dumps(cls.run_settings(), default=str)),
        "package_version": package_version(),
    }


def reuse_verdict(name: str, folder: str | Path | None = None) -> tuple[bool, str]:
    """Whether the saved model of kind ``name`` can be reused in this run, and why (or why not)."""
    from blgenre.evaluation.evaluate import load_metrics
    from blgenre.paths import model_dir

    folder = Path(folder) if folder else model_dir(name)
    try:
        meta = read_meta(folder)
        verify_files(folder, meta)
    except ModelError as exc:
        return False, f"no usable saved model ({exc})"
    if meta["kind"] != name:
        return False, f"the saved model is a {meta['kind']!r} model"
    if load_metrics(name) is None:
        return False, "the saved model has no test metrics"
    saved, now = meta.get("stamp") or {}, run_stamp(name)
    labels = {"split_sha256": "a different split", "mode": "another mode",
              "settings": "other settings", "package_version": "another package version"}
    for key, words in labels.items():
        if saved.get(key) != now[key]:
            was = saved.get(key, "unrecorded")
            shown = f" ({was} here, {now[key]} now)" if key in ("mode", "package_version") else ""
            return False, f"the saved model was trained with {words}{shown}"
    return True, "the saved model matches this run (split, mode, settings, package version)"


@dataclass
class Ensured:
    """A model ready to use, its test metrics, and whether it was trained now or reused."""

    name: str
    model: Classifier
    metrics: dict
    trained: bool
    reason: str
    seconds: float

    def describe(self) -> str:
        if self.trained:
            return f"{self.name}: trained and evaluated now ({self.seconds:.0f} s), because {self.reason}"
        return f"{self.name}: reused from artifacts/models/{self.name}, because {self.reason}"


def train_and_save(name: str, folder: str | Path | None = None) -> tuple[Classifier, dict]:
    """Train kind ``name`` on the split, save it with this run's stamp, score it once on test."""
    from blgenre.data import split
    from blgenre.evaluation.evaluate import evaluate
    from blgenre.paths import model_dir
    from blgenre.sharing.examples import pick_titles

    folder = Path(folder) if folder else model_dir(name)
    cls = registry.get(name).model_class()
    train, valid, test = split.part("train"), split.part("valid"), split.part("test")
    model = cls.train_on_split(train, valid)
    model.save(folder, stamp=run_stamp(name), examples=pick_titles(test))
    start = time.perf_counter()
    prob = model.predict_proba(test["title"].tolist())[:, 0]
    seconds = time.perf_counter() - start
    extra = {**model.evaluation_extra(folder), "test_predict_seconds": round(seconds, 2),
             "test_titles_per_second": round(len(test) / seconds, 1)}
    return model, evaluate(name, test, prob, extra=extra)


def ensure(name: str, retrain: bool = False) -> Ensured:
    """The model of kind ``name`` for this run: reused if its stamp matches, else trained now."""
    from blgenre.evaluation.evaluate import load_metrics
    from blgenre.paths import model_dir

    start = time.perf_counter()
    ok, reason = (False, "retraining was asked for") if retrain else reuse_verdict(name)
    if ok:
        return Ensured(name, load_model(model_dir(name)), load_metrics(name), False, reason,
                       time.perf_counter() - start)
    model, metrics = train_and_save(name)
    return Ensured(name, model, metrics, True, reason, time.perf_counter() - start)


def ensure_models(names: tuple[str, ...] | None = None) -> dict[str, Ensured]:
    """:func:`ensure` every model in ``names`` (default: all kinds) and print what was done.

    A chapter that needs the models calls this, so it also runs on its own (in Colab, say): a
    model an earlier chapter saved is loaded; a missing or stale one is trained now (quickly in
    workshop mode, see :mod:`blgenre.settings`).
    """
    done = {}
    for name in names or registry.names():
        done[name] = ensure(name)
        print(done[name].describe())
    return done

"""sha256 fixity helpers, used before any pickle is loaded and by the LOCKSS copies."""

from __future__ import annotations

import hashlib
from pathlib import Path

from blgenre.errors import ModelError


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | Path, expected: str) -> None:
    """Raise :class:`ModelError` unless ``path`` exists and has the ``expected`` sha256.

    Pickled models (scikit-learn, fastai) run code when they are loaded, so the book checks a
    model file against the hash recorded when it was saved before it unpickles anything.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: model file is missing")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelError(
            f"{path}: sha256 is {actual[:16]}..., but the model was saved with "
            f"{expected[:16]}...; the file was altered or replaced, so the book refuses to "
            "load it (unpickling runs code). Retrain the model or restore the original file."
        )

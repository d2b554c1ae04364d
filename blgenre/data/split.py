"""The one train / validation / test split that every chapter and model uses.

Books are grouped so that no title (compared case- and punctuation-insensitively) and no BL
record appears in two parts, and the parts are stratified by label. The split is seeded, written
to ``artifacts/split.csv`` with a ``split.json`` that records the seed, the data's sha256 and the
split's own sha256, and re-read by every later chapter.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold

from blgenre import data
from blgenre.integrity import sha256_file
from blgenre.paths import artifacts_dir
from blgenre.seed import SEED

#: Fraction of books in validation and in test: 3 and 3 of 20 stratified group folds.
N_FOLDS, VALID_FOLDS, TEST_FOLDS = 20, (0, 1, 2), (3, 4, 5)
SPLITS = ("train", "valid", "test")


def groups(books: pd.DataFrame) -> np.ndarray:
    """Group id per book: books sharing a normalised title or a record id share a group."""
    parent = list(range(len(books)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for column in (books["title"].map(data.title_key), books["record_id"]):
        first: dict[str, int] = {}
        for i, key in enumerate(column):
            j = first.setdefault(key, i)
            parent[find(i)] = find(j)
    return np.array([find(i) for i in range(len(books))])


def make_split(books: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Return ``books`` with a ``split`` column (train / valid / test), grouped and stratified."""
    books = books.reset_index(drop=True)
    folds = StratifiedGroupKFold(n_splits=N_FOLDS, shuffle=True, random_state=seed)
    fold_of = np.empty(len(books), dtype=int)
    for k, (_, idx) in enumerate(folds.split(books, books["label"], groups(books))):
        fold_of[idx] = k
    split = np.where(np.isin(fold_of, VALID_FOLDS), "valid", "train")
    split = np.where(np.isin(fold_of, TEST_FOLDS), "test", split)
    return books.assign(split=split)


def split_paths() -> tuple[Path, Path]:
    folder = artifacts_dir()
    return folder / "split.csv", folder / "split.json"


def create_split(seed: int = SEED, data_path: str | Path | None = None) -> pd.DataFrame:
    """Load the data, split it and write ``artifacts/split.csv`` and ``split.json``."""
    books, report = data.load_books(data_path)
    df = make_split(books, seed)
    csv_path, json_path = split_paths()
    df.to_csv(csv_path, index=False)
    info = {
        "seed": seed,
        # the file's name, not where it lies: no machine's paths in what a build produces
        "source": Path(report.source).name,
        "source_sha256": sha256_file(report.source),
        "split_sha256": sha256_file(csv_path),
        "sizes": {s: int((df["split"] == s).sum()) for s in SPLITS},
        "label_counts": {
            s: {k: int(v) for k, v in df.loc[df["split"] == s, "label"].value_counts().items()}
            for s in SPLITS
        },
        "load_report": {**report.as_dict(), "source": Path(report.source).name},
    }
    json_path.write_text(json.dumps(info, indent=2))
    return df


def load_split(seed: int = SEED) -> pd.DataFrame:
    """The saved split, created first if this build has not made it yet."""
    csv_path, json_path = split_paths()
    if csv_path.is_file() and json_path.is_file():
        info = json.loads(json_path.read_text())
        if info.get("seed") == seed and info.get("split_sha256") == sha256_file(csv_path):
            return pd.read_csv(csv_path, dtype={"record_id": str}, keep_default_na=False,
                               na_values={"year": [""]})
    return create_split(seed)


def split_info() -> dict:
    """The metadata written beside the split (seed, hashes, sizes, load report)."""
    load_split()
    return json.loads(split_paths()[1].read_text())


def part(name: str, seed: int = SEED) -> pd.DataFrame:
    """One part of the split: ``'train'``, ``'valid'`` or ``'test'``."""
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
    df = load_split(seed)
    return df[df["split"] == name].reset_index(drop=True)

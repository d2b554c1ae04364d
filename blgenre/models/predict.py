"""Predicting genres for titles with any saved model: the engine behind ``blgenre predict``.

Input is a text file with one title per line, or a CSV file with a ``title`` column. Output is a
CSV with ``title,label,prob_fiction,prob_non_fiction`` in input order. A blank title keeps its
row with an empty label and empty probabilities, so rows always line up with the input.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.data.text import MAX_TITLE_CHARS, clean_titles
from blgenre.errors import InputError
from blgenre.models import Classifier, load_model

OUTPUT_COLUMNS = ["title", "label", "prob_fiction", "prob_non_fiction"]


def read_titles(path: str | Path) -> list[str]:
    """Titles from a ``.csv`` (column ``title``) or a plain text file (one per line)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: input file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at position "
                         f"{exc.start}); save the titles as UTF-8") from None
    if not text.strip():
        raise InputError(f"{path}: input file is empty: no titles to classify")
    if path.suffix.lower() == ".csv":
        try:
            frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
        except pd.errors.ParserError as exc:
            raise InputError(f"{path}: not a valid CSV ({str(exc).strip()})") from None
        columns = {c.strip().lower(): c for c in frame.columns}
        if "title" not in columns:
            raise InputError(f"{path}: a CSV input needs a 'title' column; found "
                             f"{list(frame.columns)}")
        return frame[columns["title"]].tolist()
    return text.rstrip("\r\n").splitlines()


def predict_titles(model: Classifier, titles: list[str], batch_size: int = 256) -> pd.DataFrame:
    """Predict every non-blank title; blank titles get an empty label and no probabilities."""
    cleaned = clean_titles(titles)
    keep = [i for i, t in enumerate(cleaned) if t]
    probs = np.full((len(cleaned), 2), np.nan)
    for start in range(0, len(keep), batch_size):
        idx = keep[start:start + batch_size]
        probs[idx] = model.predict_proba([cleaned[i] for i in idx])
    labels = np.where(np.isnan(probs[:, 0]), "",
                      np.where(probs[:, 0] >= 0.5, "Fiction", "Non-fiction"))
    return pd.DataFrame({"title": list(titles), "label": labels,
                         "prob_fiction": probs[:, 0], "prob_non_fiction": probs[:, 1]})


def faster(model: Classifier) -> Classifier:
    """The model's cheaper CPU inference variant (``--fast``), or the model itself if it has none.

    The transformer has one (chapter 'Inference at scale'); the baseline is already fast.
    """
    make = getattr(model, "fast", None)
    return make() if callable(make) else model


def predict_file(model_dir: str | Path, input_path: str | Path, output_path: str | Path,
                 batch_size: int = 256, fast: bool = False) -> pd.DataFrame:
    """Read titles, predict with the model in ``model_dir`` and write the output CSV.

    ``fast=True`` uses the model's cheaper inference variant where it has one (see :func:`faster`).
    """
    titles = read_titles(input_path)
    model = load_model(model_dir)
    if fast:
        model = faster(model)
    result = predict_titles(model, titles, batch_size)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    result.to_csv(output_path, index=False, float_format="%.6f")
    return result


def input_notes(titles: list[str]) -> list[str]:
    """Human-readable notes about blank and over-long titles, for the CLI to print."""
    notes = []
    blank = sum(1 for t in titles if not str(t).strip())
    if blank:
        notes.append(f"{blank} blank title(s) left unlabelled")
    long = sum(1 for t in titles if len(str(t)) > MAX_TITLE_CHARS)
    if long:
        notes.append(f"{long} title(s) longer than {MAX_TITLE_CHARS} characters were cut")
    return notes

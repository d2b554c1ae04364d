"""Catalogue-ready output: genre terms in MARC for the confident records, a review list for the rest.

Serves the chapter 'Your own collection'. A model's label goes into a copy of a record only when
its probability clears a threshold chosen on the validation split (never the test split) for a
target precision, by default 95%: of the validation books the model labelled that confidently,
95% had that label. Every other record goes to a review list for a person, most uncertain first.

A genre term is written the way MARC 21 records machine-generated data:

- ``655 _7 $a Fiction $2 blgenre $8 1\\p``: a genre/form term (second indicator 7: source in
  ``$2``), ``$2`` naming the book's vocabulary (Fiction / Non-fiction, or the labels of a model
  trained on your own), ``$8`` linking the field to
- ``883 0_ $8 1\\p $a blgenre baseline sha256:... $c 0.97``: *Machine-generated metadata
  provenance*: the model's name and version (``$a``) and its probability (``$c``).

The original file is never modified: records are copied as they are read, and written elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.errors import InputError, ModelError

#: Default ``$2`` source code: the book's own vocabulary (not a code registered with the
#: Library of Congress; pass ``--genre-source local`` if your system accepts registered codes only).
GENRE_SOURCE = "blgenre"
TARGET_PRECISION = 0.95
#: A threshold needs at least this many validation books above it to be trusted.
MIN_SUPPORT = 20
VALIDATION_FILE = "validation.csv"
XML_HEAD = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
            b'<collection xmlns="http://www.loc.gov/MARC21/slim">\n')
XML_TAIL = b"</collection>\n"


# --------------------------------------------------------------------------- thresholds
def precision_thresholds(y_true, probs: np.ndarray, labels: list[str],
                         target: float = TARGET_PRECISION,
                         min_support: int = MIN_SUPPORT) -> pd.DataFrame:
    """Per label, the lowest probability at which the model's labels reach ``target`` precision.

    Among validation books whose most likely label is L, sorted by that probability, the
    threshold is the lowest one at which at least ``min_support`` books are above it and at
    least ``target`` of them truly are L. A label that never gets there gets no threshold
    (``inf``): no record receives it automatically.
    """
    y_true = np.asarray(y_true)
    top = np.asarray(probs).argmax(axis=1)
    p_top = np.asarray(probs).max(axis=1)
    rows = []
    for j, label in enumerate(labels):
        mine = top == j
        p, right = p_top[mine], (y_true[mine] == label)
        order = np.argsort(-p, kind="stable")
        p, right = p[order], right[order]
        threshold, n, precision = np.inf, 0, float("nan")
        if len(p):
            cum = np.cumsum(right) / np.arange(1, len(p) + 1)
            # only cut between different probabilities: ties are all in or all out
            last_of_value = np.r_[p[1:] != p[:-1], True]
            ok = np.flatnonzero(last_of_value & (cum >= target)
                                & (np.arange(1, len(p) + 1) >= min_support))
            if len(ok):
                k = ok[-1]
                threshold, n, precision = float(p[k]), int(k + 1), float(cum[k])
        rows.append({"label": label, "threshold": threshold, "valid_books_above": n,
                     "valid_precision": precision, "valid_predicted": int(mine.sum())})
    return pd.DataFrame(rows)


def automatic(probs: np.ndarray, thresholds: pd.DataFrame) -> np.ndarray:
    """Whether each row's most likely label clears its label's threshold."""
    probs = np.asarray(probs)
    top = probs.argmax(axis=1)
    return probs.max(axis=1) >= thresholds["threshold"].to_numpy()[top]


def validation_probabilities(model, folder: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """True labels and the model's probabilities on its validation split.

    A model trained with ``blgenre train`` keeps them in its folder (``validation.csv``, hashed in
    ``model.json``); for the book's own models the validation part of the book's split is scored
    now (it needs the British Library data, like the chapters).
    """
    from blgenre.models.lifecycle import model_labels

    folder = Path(folder)
    labels = model_labels(model.meta)
    if VALIDATION_FILE in model.meta.get("files", {}):
        frame = pd.read_csv(folder / VALIDATION_FILE, dtype={"label": str}, keep_default_na=False)
        return frame["label"].to_numpy(), model.predict_proba(frame["title"].tolist())
    stamp = model.meta.get("stamp") or {}
    if not stamp.get("split_sha256"):
        raise ModelError(f"{folder}: --marc-out needs the model's validation split to choose its "
                         "threshold, and this model has none recorded; train it with "
                         "'python -m blgenre train', which keeps it")
    from blgenre.data import split

    if split.split_info()["split_sha256"] != stamp["split_sha256"]:
        raise ModelError(f"{folder}: the model was trained on another split than the one under "
                         "artifacts/; its validation books are not known, so no threshold can "
                         "be chosen")
    valid = split.part("valid")
    probs = model.predict_proba(valid["title"].tolist())
    if probs.shape[1] != len(labels):
        raise ModelError(f"{folder}: {probs.shape[1]} probability columns for labels {labels}")
    return valid["label"].to_numpy(), probs


# --------------------------------------------------------------------------- MARC
def marc_kind(path: str | Path) -> str:
    """``xml`` or ``binary`` from the output file's name (``.xml`` / ``.mrc``)."""
    suffix = Path(path).suffix.lower()
    if suffix in (".xml", ".marcxml"):
        return "xml"
    if suffix in (".mrc", ".marc"):
        return "binary"
    raise InputError(f"{path}: --marc-out must end in .xml (MARCXML) or .mrc (binary MARC); "
                     "compress it afterwards if you need to")


def _free_link(record) -> int:
    used = set()
    for f in record.get_fields():
        if getattr(f, "is_control_field", lambda: True)():
            continue
        for value in f.get_subfields("8"):
            match = re.match(r"(\d+)", value)
            if match:
                used.add(int(match.group(1)))
    n = 1
    while n in used:
        n += 1
    return n


def add_genre(record, label: str, probability: float, model_label: str,
              source: str = GENRE_SOURCE):
    """Add a 655 genre term and its linked 883 provenance field to ``record`` (a copy)."""
    from pymarc import Field, Indicators, Subfield

    link = f"{_free_link(record)}\\p"
    record.add_ordered_field(Field(tag="655", indicators=Indicators(" ", "7"), subfields=[
        Subfield("a", label), Subfield("2", source), Subfield("8", link)]))
    record.add_ordered_field(Field(tag="883", indicators=Indicators("0", " "), subfields=[
        Subfield("8", link), Subfield("a", model_label), Subfield("c", f"{probability:.3f}")]))
    return record


def record_bytes(record, kind: str) -> bytes:
    """One record as MARCXML (no XML declaration) or binary MARC."""
    if kind == "xml":
        import pymarc

        return pymarc.record_to_xml(record) + b"\n"
    return record.as_marc()


# --------------------------------------------------------------------------- review list
REVIEW_COLUMNS = ["record_id", "title", "suggested_label", "probability", "threshold", "reason"]


def sort_review(partial: Path, final: Path) -> int:
    """Write the review list most uncertain first (lowest probability of the suggested label;
    records without a title last); return its length."""
    frame = pd.read_csv(partial, dtype=str, keep_default_na=False)
    prob = pd.to_numeric(frame["probability"], errors="coerce").fillna(2.0)
    frame = frame.assign(_p=prob.to_numpy()).sort_values("_p", kind="stable").drop(columns="_p")
    frame.to_csv(final, index=False)
    return len(frame)

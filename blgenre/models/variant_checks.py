"""Whether a cheaper copy of a model (int8 weights, bfloat16) may stand in for it in
``predict --fast``: a check on the validation split, recorded in the model's ``model.json``.

Both neural kinds have such copies (``model.variant(name)``): the fastai model's int8 network
(:mod:`blgenre.models.fastai_fast`) and the transformer's bfloat16 copy, a candidate on a CPU
with bfloat16 instructions (AMX, AVX512-BF16) and many times slower elsewhere.
Using one is a choice, so it is checked on the validation split, never the test split, with the
rule of the ONNX exports (:func:`blgenre.models.onnx_export.verdict`: at least
``MIN_INT8_AGREEMENT`` of the labels kept, at most ``MAX_F1_LOSS`` of macro-F1 lost).
"""

from __future__ import annotations

import numpy as np


def variant_check(model, name: str, valid, reference: np.ndarray | None = None) -> dict:
    """How ``model.variant(name)`` follows ``model`` on ``valid`` (``title`` and ``label``), and
    whether it passed. ``reference``: the model's own probabilities for ``valid``, if known."""
    from blgenre.evaluation.evaluate import macro_f1
    from blgenre.models.lifecycle import model_labels
    from blgenre.models.onnx_export import verdict

    titles, truth = valid["title"].tolist(), valid["label"].to_numpy()
    labels = np.asarray(model_labels(model.meta), dtype=object)
    if reference is None:
        reference = model.predict_proba(titles)
    prob = model.variant(name).predict_proba(titles)
    ref_pred, pred = labels[reference.argmax(axis=1)], labels[prob.argmax(axis=1)]
    f1_ref, f1 = (macro_f1(truth, p, list(labels)) for p in (ref_pred, pred))
    check = {"split": "validation", "variant": name, "n_titles": len(titles),
             "label_agreement": float((pred == ref_pred).mean()) if len(titles) else 1.0,
             "max_prob_diff": float(np.abs(prob - reference).max()) if len(titles) else 0.0,
             "macro_f1": float(f1), "macro_f1_original": float(f1_ref),
             "macro_f1_loss": float(f1_ref - f1)}
    return verdict(check, "int8")


def ensure_variant_check(model, name: str, key: str, valid=None, folder=None) -> dict:
    """``model``'s check of variant ``name``: the one under ``key`` in the ``model.json`` of
    ``folder`` (default: the folder it was loaded from), else run now (on ``valid``, by default
    the book's validation split, which raises :class:`~blgenre.errors.DataError` where the data
    is missing) and written there."""
    from blgenre.models.lifecycle import add_to_meta, read_meta

    folder = folder if folder is not None else getattr(model, "folder", None)
    meta = read_meta(folder) if folder is not None else dict(model.meta)
    if meta.get(key):
        return meta[key]
    if valid is None:
        from blgenre.data import split

        valid = split.part("valid")
    check = model.meta[key] = variant_check(model, name, valid)
    if folder is not None:
        add_to_meta(folder, key, check)
    return check


def passes(model, name: str, key: str) -> bool:
    """Whether the saved ``model``'s variant ``name`` passed its check (made now if need be).
    False for a model never saved, or where the check cannot be made (no validation split)."""
    from blgenre.errors import BLGenreError

    if getattr(model, "folder", None) is None:
        return False
    try:
        return bool(ensure_variant_check(model, name, key)["passed"])
    except (BLGenreError, OSError):
        return False

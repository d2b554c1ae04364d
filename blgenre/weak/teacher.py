"""The best model as a teacher: its answers for the unlabelled pool, for smaller models to learn.

Serves distillation (chapter *Fine-tuning a transformer*, and
:mod:`blgenre.models.weak_variants`). The weak labels of the chapter *Weak supervision* come
mostly from the baseline's own confident predictions, so they cannot teach the baseline much.
The transformer is the most accurate model in the book, but also the slowest: labelling the
collection with it once, and letting the fast baseline learn from those labels, gives the
collection-scale model some of what the transformer knows.

The teacher reads the same pool as the weak labels (:func:`blgenre.data.unlabelled.unlabelled_pool`),
from which every validation and test book was removed by id and by normalised title, so no
held-out book is in what the students learn from. In workshop mode it reads a seeded sample
(:data:`WORKSHOP_POOL_TITLES`), which keeps the chapter short.

Labelling the whole pool is the longest step of the transformer's chapter, so it is made cheap
without changing the answers: the titles are sorted by length over the whole pool (not within
each batch of :data:`BATCH`), so each batch pads little, and a large pool is read by the
teacher's ONNX float32 export (:func:`labeller`), which on two cores reads titles about twice as
fast as PyTorch and gives the same probabilities (its check on validation allows 1e-4; about
2e-6 is measured).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from blgenre.data import LABELS
from blgenre.paths import artifacts_dir
from blgenre.seed import SEED

#: The kind whose answers the students learn from.
TEACHER = "transformer"
#: Pool titles the teacher labels in workshop mode (the full pool has about 22,000; the
#: transformer labels a few hundred a second on two cores, fewer when they are busy).
WORKSHOP_POOL_TITLES = 500
#: Bump to recompute cached teacher labels after a change to how they are made (2: the ONNX
#: float32 export reads large pools).
VERSION = 2
BATCH = 512
#: Pool size from which the ONNX float32 export reads the pool: exporting and checking it takes
#: about 25 s on two cores (once per model; the chapter 'Inference at scale' needs it anyway),
#: which a workshop's few hundred titles would not pay back.
ONNX_FROM_TITLES = 5_000


def teacher_key(teacher: str = TEACHER) -> dict:
    """What the teacher's labels depend on: its saved files (none yet: ``None``), the mode and
    :data:`VERSION`. Cached labels, and the students' reuse stamps, carry it."""
    from blgenre import settings
    from blgenre.errors import ModelError
    from blgenre.models.lifecycle import read_meta
    from blgenre.paths import model_dir

    try:
        files = read_meta(model_dir(teacher)).get("files")
    except ModelError:
        files = None
    return {"teacher": teacher, "teacher_files": files,
            "mode": "workshop" if settings.workshop() else "full", "version": VERSION}


def pool_sample() -> pd.DataFrame:
    """The unlabelled pool (``id``, ``title``), sampled with a seed in workshop mode."""
    from blgenre import settings
    from blgenre.data.unlabelled import unlabelled_pool

    pool = unlabelled_pool()[["id", "title"]]
    if settings.workshop() and len(pool) > WORKSHOP_POOL_TITLES:
        pool = pool.sample(n=WORKSHOP_POOL_TITLES, random_state=SEED).sort_index()
    return pool.reset_index(drop=True)


def teacher_labels(teacher: str = TEACHER, refresh: bool = False) -> pd.DataFrame:
    """The teacher's probability of Fiction for every pool title (``id``, ``title``,
    ``prob_fiction``), cached in ``artifacts/weak/`` until the teacher's files change."""
    from tqdm.auto import tqdm

    from blgenre.models.lifecycle import ensure, reuse_verdict

    csv, meta = _files(teacher)
    # labels cached from a teacher that is still current: no need to load it (each option a
    # student tries asks for the labels again)
    if not refresh and reuse_verdict(teacher)[0]:
        cached = _cached(csv, meta, teacher_key(teacher))
        if cached is not None:
            return cached
    model = ensure(teacher).model  # first, so that the key below sees the files it will use
    key = teacher_key(teacher)
    cached = None if refresh else _cached(csv, meta, key)
    if cached is not None:
        return cached
    pool = pool_sample()
    titles = pool["title"].tolist()
    reader, copy = labeller(model, teacher, len(titles))
    column = list(model.meta["labels"]).index(LABELS[0])
    order = np.argsort([len(t) for t in titles], kind="stable")  # similar lengths batch together
    by_length = [titles[i] for i in order]
    start = time.perf_counter()
    chunks = [np.asarray(reader.predict_proba(by_length[i:i + BATCH]))[:, column]
              for i in tqdm(range(0, len(titles), BATCH), desc=f"{teacher} labels the pool",
                            unit="batch")]
    seconds = time.perf_counter() - start
    prob = np.empty(len(titles))
    prob[order] = np.concatenate(chunks) if chunks else []
    out = pool.assign(prob_fiction=np.round(prob, 6))
    out.to_csv(csv, index=False)
    meta.write_text(json.dumps({**key, "labelled_by": copy, "seconds": round(seconds, 1),
                                "titles_per_s": round(len(titles) / max(seconds, 1e-9), 1)},
                               indent=2))
    return out


def labeller(model, teacher: str, n_titles: int):
    """What reads the pool, and its name: the teacher's checked ONNX float32 export for a pool of
    at least :data:`ONNX_FROM_TITLES` titles where its kind exports to ONNX and the export passed
    its check, else the model itself (``plain``). A model never saved has no export to check."""
    from blgenre.errors import BLGenreError
    from blgenre.models import onnx_export, registry
    from blgenre.models.onnx_runtime import passed

    folder = getattr(model, "folder", None)
    if n_titles < ONNX_FROM_TITLES or registry.get(teacher).onnx != "torch" or folder is None:
        return model, "plain"
    try:
        record = onnx_export.ensure_onnx(teacher, folder)
    except (BLGenreError, ImportError, OSError) as error:  # no ONNX Runtime, a read-only folder
        print(f"the {teacher}'s ONNX export is not available ({error}); PyTorch labels the pool")
        return model, "plain"
    if not passed(record, "fp32"):
        return model, "plain"
    return model.variant("onnx-fp32"), "onnx-fp32"


def labelled_by(teacher: str = TEACHER) -> dict:
    """How the cached labels were made: ``labelled_by`` (the copy), ``seconds``, ``titles_per_s``
    (empty if there are none)."""
    meta = _files(teacher)[1]
    stored = json.loads(meta.read_text()) if meta.is_file() else {}
    return {k: stored[k] for k in ("labelled_by", "seconds", "titles_per_s") if k in stored}


def _files(teacher: str):
    """The cached labels' CSV and the JSON record of how they were made."""
    folder = artifacts_dir("weak")
    return folder / f"teacher_{teacher}.csv", folder / f"teacher_{teacher}.json"


def _cached(csv, meta, key: dict) -> pd.DataFrame | None:
    """The cached labels if they were made under ``key``, else ``None``."""
    if csv.is_file() and meta.is_file():
        stored = json.loads(meta.read_text())
        if {k: stored.get(k) for k in key} == key:
            return pd.read_csv(csv, dtype={"id": str, "title": str}, keep_default_na=False)
    return None


def distilled_frame(threshold: float, teacher: str = TEACHER) -> pd.DataFrame:
    """Pool titles the teacher labels with at least ``threshold`` confidence, as training rows
    (``title``, ``label``, ``weight`` = the teacher's confidence, ``id``)."""
    labels = teacher_labels(teacher)
    p = labels["prob_fiction"].to_numpy(dtype=float)
    conf = np.maximum(p, 1 - p)
    keep = conf >= threshold
    return pd.DataFrame({"title": labels["title"][keep],
                         "label": np.where(p[keep] >= 0.5, *LABELS),
                         "weight": conf[keep], "id": labels["id"][keep]}).reset_index(drop=True)

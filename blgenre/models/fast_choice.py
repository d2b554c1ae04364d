"""Which of a model's checked cheaper copies ``predict --fast`` runs: the fastest *on this CPU*,
timed there once, not guessed from the CPU's instruction sets.

Having bfloat16 instructions does not make bfloat16 the fastest copy. On an AMD EPYC with
AVX512-BF16 and VNNI the transformer in bfloat16 classified about 530 titles a second and its
int8 ONNX file about 870 (chapter *Inference at scale*), so a rule "bfloat16 where the CPU has
it" picked the slowest copy there. Where more than one copy passed its validation check, each is
timed here on a few hundred titles (a few seconds, once) and the fastest is recorded in the
model's ``model.json`` with what it was timed on: the CPU's name, its vector instruction sets
and the number of threads. A copy of the folder on another machine times again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: Where in ``model.json`` the timing is kept.
KEY = "fast_timing"
#: How many titles each candidate is timed on (the model's example titles, repeated).
TIMING_TITLES = 384
#: The instruction sets that decide which copy is fast (integer and bfloat16 matrix products).
FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
#: Titles to time on where a model records no examples (a model saved by an older version).
FALLBACK_TITLES = ("Circassia; or, a Tour to the Caucasus",
                   "Miss Kate; or, Confessions of a Caretaker. A novel. By Rita",
                   "A history of the county of Durham, with an account of its antiquities")


def titles_per_second(model, titles: list[str], repeats: int = 2) -> float:
    """The best of ``repeats`` timed runs of ``model.predict_proba`` over ``titles`` (as
    ``timeit`` does: slower runs measure what else the machine was doing)."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_proba(titles)
        best = min(best, time.perf_counter() - start)
    return len(titles) / best


def cpu() -> dict:
    """What a timing holds for: the CPU's name, its relevant instruction sets, PyTorch's threads."""
    import torch

    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                 if line.startswith("model name")), "unknown")
    words = set(info.split())
    return {"model": name, "flags": [f for f in FLAGS if f in words],
            "threads": torch.get_num_threads()}


def timing_titles(meta: dict, n: int = TIMING_TITLES) -> list[str]:
    """``n`` titles of catalogue length to time on: the model's examples, repeated."""
    examples = list(meta.get("examples") or FALLBACK_TITLES)
    return (examples * (n // len(examples) + 1))[:n]


def current(record: dict | None, names, weights: str | None) -> bool:
    """Whether a recorded timing still holds: same CPU and threads, same candidates, same
    weights."""
    return bool(record) and record.get("cpu") == cpu() and record.get("weights") == weights \
        and sorted(record.get("titles_per_s", {})) == sorted(names)


def fastest(model, candidates: dict[str, Callable[[], object]]):
    """The fastest of ``candidates`` (name: a function that makes that copy of ``model``), each
    of which passed its check: from ``model.json`` where this CPU timed them, else timed now
    and recorded. A model never saved is timed every time (nothing to record in)."""
    from blgenre.models.lifecycle import add_to_meta

    if len(candidates) == 1:
        return next(iter(candidates.values()))()
    folder, record, weights = _stored(model)
    if current(record, candidates, weights):
        return candidates[record["chosen"]]()
    made = {name: make() for name, make in candidates.items()}
    titles = timing_titles(model.meta)
    for copy in made.values():
        copy.predict_proba(titles[:32])  # first calls pay for set-up (allocations, kernels)
    speeds = {name: round(titles_per_second(copy, titles), 1) for name, copy in made.items()}
    chosen = max(speeds, key=speeds.get)
    record = {"chosen": chosen, "titles_per_s": speeds, "n_titles": len(titles), "cpu": cpu(),
              "weights": weights}
    if folder is not None:
        add_to_meta(folder, KEY, record)
    return made[chosen]


def recorded(model) -> dict | None:
    """The timing that decided ``model``'s fast copy on this CPU, if one was needed and made."""
    _, record, weights = _stored(model)
    names = (record or {}).get("titles_per_s", {})
    return record if current(record, names, weights) else None


def _stored(model) -> tuple:
    """``(folder, timing record, weights' sha256)`` of ``model``: the folder and the record are
    ``None`` for a model never saved (or never timed)."""
    from blgenre.models import registry
    from blgenre.models.lifecycle import read_meta

    folder = getattr(model, "folder", None)
    record = read_meta(folder).get(KEY) if folder is not None else None
    main = registry.get(model.meta.get("kind", "transformer")).main_file
    return folder, record, model.meta.get("files", {}).get(main)

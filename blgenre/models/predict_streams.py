"""A second prediction stream in a worker process, for models whose one process uses one core.

The fastai model spends much of its time tokenising in Python, which holds the interpreter lock,
so one ``predict`` process keeps about one core busy however many torch threads it has
(``benchmarks/collection.json``: 1.1 CPU-seconds per second on two cores). A second process with
its own copy of the model takes the next chunk whenever it is free while the first predicts
the chunks in between (:func:`spread`). The chunks are written in input order, so the
output, and what ``--resume`` continues from, are byte for byte those of one process. It
costs a second copy of the model in memory (about 600 MB for fastai) and a few seconds to
start, so it is used for the kinds that gain from it (``Kind.predict_streams``) and only on a
machine with a core for each stream.

The worker is *spawned*, not forked: forking a process that has already run torch's OpenMP
threads can deadlock the child.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import pandas as pd

_MODEL = None  # the worker's model (set by _load in the worker process)


def streams_for(kind_name: str, requested: int | None = None) -> int:
    """How many processes predict: ``requested``, else the kind's own number if the machine
    has that many cores, else one."""
    from blgenre.models import registry

    if requested is not None:
        return max(1, requested)
    wanted = registry.get(kind_name).predict_streams
    return wanted if (os.cpu_count() or 1) >= wanted else 1


def share_threads(streams: int) -> None:
    """Give each of ``streams`` processes its share of the cores for torch (at least one).

    Called once the model is loaded, and only if something has imported torch by then: the
    model's threads are set, and this never imports torch itself for a model that has none."""
    import sys

    if streams > 1 and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(max(1, (os.cpu_count() or 1) // streams))


def _exit_with(parent: int, every: float = 0.5) -> None:
    """End this worker when ``parent`` is gone: a ``predict`` killed mid-run (which
    ``--resume`` continues) must not leave its worker behind, holding a model in memory."""
    import threading
    import time

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="blgenre-parent-watch").start()


def _load(model_dir: str, fast: bool, streams: int, parent: int) -> None:
    from blgenre.models.lifecycle import load_model
    from blgenre.models.predict import faster

    global _MODEL
    _exit_with(parent)
    model = load_model(model_dir)
    _MODEL = faster(model) if fast else model
    share_threads(streams)


def _predict(titles: list[str], batch_size: int) -> pd.DataFrame:
    from blgenre.models.predict import predict_titles

    return predict_titles(_MODEL, titles, batch_size)


class Worker:
    """One worker process holding its own copy of the model in ``model_dir``."""

    def __init__(self, model_dir: str, fast: bool, streams: int = 2):
        self.pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_load,
                                        initargs=(model_dir, fast, streams, os.getpid()))

    def submit(self, titles: list[str], batch_size: int) -> Future:
        return self.pool.submit(_predict, titles, batch_size)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def spread(chunks: Iterable[list], here: Callable[[list], pd.DataFrame],
           there: Callable[[list], Future] | None,
           ahead: int = 4) -> Iterator[tuple[list, pd.DataFrame]]:
    """``(chunk, result)`` in input order, predicted here and by the worker (``there``).

    Each chunk is read one step ahead: before this process predicts a chunk, the one after it
    goes to the worker if the worker is idle. So the first chunk is predicted here while the
    worker is still starting (a one-chunk input never waits for it), and the faster of the two
    does more of the chunks. Results wait, at most ``ahead`` chunks, until every earlier chunk
    is done. Without a worker, every chunk is predicted here, one after another.
    """
    queue: list[list] = []  # [chunk, DataFrame | Future], in input order

    def value(result):
        return result.result() if isinstance(result, Future) else result

    def ready() -> Iterator[tuple[list, pd.DataFrame]]:
        while queue and (not isinstance(queue[0][1], Future) or queue[0][1].done()):
            chunk, result = queue.pop(0)
            yield chunk, value(result)

    def worker_idle() -> bool:
        return not any(isinstance(r, Future) and not r.done() for _, r in queue)

    held = None
    for chunk in chunks:
        if held is None:
            held = chunk
            continue
        entry = [held, None]
        queue.append(entry)
        if there is not None and worker_idle():
            queue.append([chunk, there(chunk)])
            held = None
        else:
            held = chunk
        entry[1] = here(entry[0])
        yield from ready()
        while len(queue) >= ahead:  # the worker is far behind: wait for it
            queue[0][1].result()
            yield from ready()
    if held is not None:
        queue.append([held, here(held)])
    for chunk, result in queue:
        yield chunk, value(result)

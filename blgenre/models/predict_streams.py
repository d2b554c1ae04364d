"""A second prediction stream in a worker process, for models whose one process uses one core.

The fastai model spends much of its time tokenising in Python, which holds the interpreter lock,
so one ``predict`` process keeps about one core busy however many torch threads it has
(``benchmarks/collection.json``: 1.1 CPU-seconds per second on two cores). A second process with
its own copy of the model always has a chunk waiting while the first predicts the chunks in
between (:func:`spread`). The chunks are written in input order, so the
output, and what ``--resume`` continues from, are byte for byte those of one process. It
costs a second copy of the model in memory (about 600 MB for fastai) and a few seconds to
start, so it is used for the kinds that gain from it (``Kind.predict_streams``) and only on a
machine with a core for each stream.

The worker is *spawned*, not forked: forking a process that has already run torch's OpenMP
threads can deadlock the child.
"""

from __future__ import annotations

import itertools
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


def share_threads(streams: int, model=None) -> None:
    """Give each of ``streams`` processes its share of the cores (at least one).

    Called once the model is loaded: torch's threads, if something has imported torch by then
    (this never imports torch itself for a model that has none), and the model's own runtime
    where it has one (``set_threads``: an ONNX Runtime session sizes its thread pool when it
    opens)."""
    import sys

    if streams <= 1:
        return
    share = max(1, (os.cpu_count() or 1) // streams)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(share)
    if callable(getattr(model, "set_threads", None)):
        model.set_threads(share)


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
    share_threads(streams, _MODEL)


def _predict(titles: list[str], batch_size: int) -> pd.DataFrame:
    from blgenre.models.predict import predict_titles

    return predict_titles(_MODEL, titles, batch_size, overlap=False)  # one core each


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
           there: Callable[[list], Future] | None, depth: int = 2,
           ahead: int = 6) -> Iterator[tuple[list, pd.DataFrame]]:
    """``(chunk, result)`` in input order, predicted here and by the worker (``there``).

    The first chunk is predicted here, while the worker starts with the second (a one-chunk
    input never starts it). After that, each chunk goes to the worker if it has fewer than
    ``depth`` chunks to do, else it is predicted here. The worker so always has its next chunk
    waiting when it finishes one: handing it a chunk only when it was idle left it idle for a
    whole chunk in three when both streams were equally fast (``benchmarks/collection.json``:
    1.5 of 2 cores busy). Results wait, at most ``ahead`` chunks, until every earlier chunk is
    done. Without a worker, every chunk is predicted here, one after another.
    """
    queue: list[tuple[list, pd.DataFrame | Future]] = []  # in input order

    def value(result):
        return result.result() if isinstance(result, Future) else result

    def ready() -> Iterator[tuple[list, pd.DataFrame]]:
        while queue and (not isinstance(queue[0][1], Future) or queue[0][1].done()):
            chunk, result = queue.pop(0)
            yield chunk, value(result)

    def worker_load() -> int:
        return sum(isinstance(r, Future) and not r.done() for _, r in queue)

    items = iter(chunks)
    first = next(items, None)
    second = next(items, None) if first is not None else None
    if there is None or second is None:
        for chunk in (c for c in itertools.chain([first, second], items) if c is not None):
            yield chunk, here(chunk)
        return
    started = there(second)  # before this process is busy with the first
    queue += [(first, here(first)), (second, started)]
    yield from ready()
    for chunk in items:
        queue.append((chunk, there(chunk) if worker_load() < depth else here(chunk)))
        yield from ready()
        while len(queue) >= ahead:  # the worker is far behind: wait for it
            queue[0][1].result()
            yield from ready()
    for chunk, result in queue:
        yield chunk, value(result)

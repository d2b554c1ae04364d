"""Two prediction streams give the rows of one, in input order (``predict_streams.spread``)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest

from blgenre.models.predict_streams import spread, streams_for


def _result(chunk: list, where: str) -> pd.DataFrame:
    return pd.DataFrame({"title": chunk, "where": where})


@pytest.mark.parametrize("worker_delay", [0.0, 0.02, 0.2])
def test_spread_keeps_input_order_whoever_is_faster(worker_delay):
    chunks = [[f"t{i}-{j}" for j in range(3)] for i in range(12)]
    seen_here = []

    def here(chunk):
        seen_here.append(chunk)
        time.sleep(0.01)
        return _result(chunk, "here")

    with ThreadPoolExecutor(1) as pool:
        def there(chunk):
            return pool.submit(lambda: (time.sleep(worker_delay), _result(chunk, "there"))[1])

        out = list(spread(iter(chunks), here, there))
    assert [c for c, _ in out] == chunks
    assert all(r["title"].tolist() == c for c, r in out)
    where = [r["where"].iat[0] for _, r in out]
    assert "there" in where and "here" in where  # both streams worked
    if worker_delay >= 0.2:  # a slow worker gets few chunks; this process does the rest
        assert where.count("here") > where.count("there")


def test_spread_without_a_worker_predicts_everything_here():
    chunks = [["a"], ["b"], ["c"]]
    out = list(spread(iter(chunks), lambda c: _result(c, "here"), None))
    assert [c for c, _ in out] == chunks and {r["where"].iat[0] for _, r in out} == {"here"}


def test_streams_follow_the_registry_and_the_request(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert streams_for("fastai") == 2 and streams_for("baseline") == 1
    assert streams_for("fastai", 1) == 1 and streams_for("baseline", 3) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert streams_for("fastai") == 1  # one core: a second process would only compete


def test_the_first_chunk_is_predicted_here_while_the_worker_starts():
    """A one-chunk input never waits for the worker; with two, the worker takes the second."""
    with ThreadPoolExecutor(1) as pool:
        def there(chunk):
            return pool.submit(_result, chunk, "there")

        one = list(spread(iter([["a"]]), lambda c: _result(c, "here"), there))
        two = list(spread(iter([["a"], ["b"]]), lambda c: _result(c, "here"), there))
    assert [r["where"].iat[0] for _, r in one] == ["here"]
    assert [r["where"].iat[0] for _, r in two] == ["here", "there"]


def test_the_worker_always_has_a_chunk_waiting():
    """Equally fast streams share the chunks about evenly: the worker is handed its next chunk
    before it finishes one, so it never waits for this process (it did, a chunk in three)."""
    chunks = [[f"t{i}"] for i in range(24)]

    def here(chunk):
        time.sleep(0.05)
        return _result(chunk, "here")

    with ThreadPoolExecutor(1) as pool:
        def there(chunk):
            return pool.submit(lambda: (time.sleep(0.05), _result(chunk, "there"))[1])

        start = time.perf_counter()
        out = list(spread(iter(chunks), here, there))
        seconds = time.perf_counter() - start
    assert [c for c, _ in out] == chunks
    where = [r["where"].iat[0] for _, r in out]
    assert where.count("there") >= where.count("here") - 1
    assert seconds < 0.05 * len(chunks) * 0.7  # two streams, not one

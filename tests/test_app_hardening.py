"""The app under load and attack: concurrent callers, failing models, no network, no data.

The load test runs the book's three real models (``artifacts/models`` after the book build: in CI
the build runs first; elsewhere it uses the models a build left there and skips without them).
Everything else runs against made-up models, on loopback only, with bounded loops.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import make_rows

from blgenre import data
from blgenre.__main__ import main
from blgenre.models import META_FILE, registry
from blgenre.models.baseline import BaselineModel
from blgenre.sharing.app import build_app, launch, load_available, parse_sse, predict_all
from blgenre.sharing.examples import FALLBACK_TITLES, example_titles, example_titles_for_folder

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning",
                                        "ignore::DeprecationWarning")

TITLES = ["The mystery of the moor. A novel", "A history of the railways in Scotland",
          "Poems of love and the sea", "Report on the geology of Norway",
          "Путешествие по России", "The castle of Otranto, a Gothic story"]
LOOPBACK = ("127.0.0.1", "::1", "localhost", "0.0.0.0", "")


class Fragile:
    """A model that breaks, like a shared fastai learner, when two callers use it at once."""

    def __init__(self, delay: float = 0.002):
        self.delay, self.busy, self.calls, self.overlaps = delay, False, 0, 0
        self.meta = {"kind": "baseline"}

    def predict_proba(self, titles):
        if self.busy:
            self.overlaps += 1
            raise AttributeError("Exception occured in `ProgressCallback` when calling event "
                                 "`after_batch`:\n\tAttributeError: 'ProgressCallback' object "
                                 "has no attribute 'pbar'")
        self.busy = True
        try:
            time.sleep(self.delay)
            self.calls += 1
            p = 0.9 if "novel" in titles[0].lower() else 0.2
            return np.array([[p, 1 - p]] * len(titles))
        finally:
            self.busy = False


class Broken:
    """A model whose every prediction fails with a library's multi-line internals."""

    meta = {"kind": "fastai"}

    def predict_proba(self, titles):
        raise RuntimeError("Exception occured in `ProgressCallback` when calling event "
                           "`after_fit`:\n\tAttributeError: 'ProgressCallback' object has no "
                           "attribute 'pbar'\n  File \"/site-packages/fastai/learner.py\"")


def call(http, base: str, title: str) -> tuple[str, object]:
    """One /classify call over plain HTTP: ``(event, data)``."""
    event_id = http.post(base, json={"data": [title]}).json()["event_id"]
    return parse_sse(http.get(f"{base}/{event_id}").text)


def same(got: dict, want: dict, tol: float = 1e-4) -> bool:
    """Same labels and (up to float noise across thread counts) the same probabilities."""
    return set(got) == set(want) and all(
        got[m]["label"] == want[m]["label"]
        and abs(got[m]["prob_fiction"] - want[m]["prob_fiction"]) < tol for m in want)


def hammer(url: str, titles: list[str], n_clients: int, n_requests: int,
           expected: dict | None = None) -> tuple[list[float], list, float]:
    """``n_clients`` threads x ``n_requests`` calls: latencies, wrong answers, wall seconds."""
    import httpx

    base = url.rstrip("/") + "/gradio_api/call/classify"
    latencies, errors, lock = [], [], threading.Lock()

    def one_client(k: int) -> None:
        with httpx.Client(timeout=300) as http:
            for i in range(n_requests):
                title = titles[(k + i) % len(titles)]
                t0 = time.perf_counter()
                try:
                    event, payload = call(http, base, title)
                except Exception as exc:  # noqa: BLE001 - a dropped connection counts as an error
                    event, payload = "exception", repr(exc)
                dt = time.perf_counter() - t0
                ok = event == "complete" and (expected is None or same(payload[0], expected[title]))
                with lock:
                    latencies.append(dt)
                    if not ok:
                        errors.append((title, event, str(payload)[:300]))

    start = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(one_client, range(n_clients)))
    return latencies, errors, time.perf_counter() - start


def summary(what: str, latencies: list[float], errors: list, wall: float) -> str:
    q = statistics.quantiles(latencies, n=20)
    return (f"{what}: {len(latencies)} requests, {len(errors)} errors, {wall:.1f} s "
            f"({len(latencies) / wall:.0f}/s); latency p50 {statistics.median(latencies) * 1000:.0f}"
            f" ms, p95 {q[18] * 1000:.0f} ms")


# --------------------------------------------------------------------------- concurrency
def test_each_model_serves_one_caller_at_a_time(measure):
    """50 clients at once against a model that breaks when shared: no overlap, no error."""
    fragile = Fragile()
    demo = build_app(models={"baseline": fragile}, examples=[])
    url = launch(demo, port=None, block=False)
    try:
        latencies, errors, wall = hammer(url, TITLES[:4], n_clients=50, n_requests=4)
    finally:
        demo.close()
    assert errors == [] and fragile.overlaps == 0
    assert fragile.calls == len(latencies) == 200
    measure(summary("app, 50 clients x 4, a model unsafe to share", latencies, errors, wall))


def test_model_failure_reaches_api_callers_as_one_readable_line(tmp_path):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    demo = build_app(models={"fastai": Broken()}, examples=[])
    url = launch(demo, port=None, block=False)
    try:
        with pytest.raises(AppError) as info:
            Client(url, verbose=False).predict("A novel", api_name="/classify")
    finally:
        demo.close()
    message = str(info.value)
    assert "The fastai model could not classify this title (RuntimeError)" in message
    assert "\n" not in message.strip()
    assert "ProgressCallback" not in message and "site-packages" not in message


def test_widget_and_python_callers_get_the_same_one_line_error():
    from blgenre.sharing.app import AppError

    with pytest.raises(AppError, match="could not classify") as info:
        predict_all({"fastai": Broken()}, "A novel")
    assert "\n" not in str(info.value) and "pbar" not in str(info.value)


# --------------------------------------------------------------------------- no network
@pytest.fixture
def no_outbound(monkeypatch):
    """Refuse (and record) every connection and name lookup that leaves this machine."""
    attempts: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo
    real_create = socket.create_connection

    def is_local(host) -> bool:
        host = str(host)
        return host in LOOPBACK or host.startswith("127.")

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not is_local(host):
            attempts.append(f"connect {address}")
            raise OSError("outbound connection refused by the test")
        return real_connect(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not is_local(host):
            attempts.append(f"lookup {host}")
            raise socket.gaierror("name lookup refused by the test")
        return real_getaddrinfo(host, *args, **kwargs)

    def create_connection(address, *args, **kwargs):
        if not is_local(address[0]):
            attempts.append(f"create_connection {address}")
            raise OSError("outbound connection refused by the test")
        return real_create(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts


def test_launch_opens_no_outbound_connection(no_outbound, monkeypatch):
    """Analytics off and no share link, even on a hosted notebook that would want one."""
    import httpx

    monkeypatch.delenv("GRADIO_ANALYTICS_ENABLED", raising=False)
    monkeypatch.delenv("HF_HUB_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Interactive")  # Gradio then wants share=True
    demo = build_app(models={"baseline": Fragile()}, examples=list(FALLBACK_TITLES))
    url = launch(demo, port=None, block=False)
    try:
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(timeout=60) as http:
            event, payload = call(http, url.rstrip("/") + "/gradio_api/call/classify", TITLES[0])
        assert event == "complete"
        time.sleep(1.0)  # Gradio's analytics and version check run in background threads
        assert demo.share is False and demo.analytics_enabled is False
    finally:
        demo.close()
    assert no_outbound == []


def test_share_links_are_refused():
    from blgenre.sharing.app import AppError

    demo = build_app(models={"baseline": Fragile()}, examples=[])
    with pytest.raises(AppError, match="share links"):
        launch(demo, port=None, block=False, share=True)


# --------------------------------------------------------------------------- starting offline
@pytest.fixture
def saved_baseline(tmp_artifacts):
    books, _ = data.clean(make_rows())
    model = BaselineModel.train_on_split(books.iloc[:90], books.iloc[90:])
    return model.save(tmp_artifacts / "models" / "baseline",
                      examples=["Poems of love and the sea", "A treatise on steam and war"])


def test_examples_come_from_the_model_folders(saved_baseline, tmp_artifacts, monkeypatch):
    from blgenre.data import split

    def no_split(*args, **kwargs):
        raise AssertionError("the app must not need the split or the data")

    monkeypatch.setattr(split, "load_split", no_split)
    assert example_titles_for_folder(saved_baseline) == ["Poems of love and the sea",
                                                         "A treatise on steam and war"]
    assert example_titles() == ["Poems of love and the sea", "A treatise on steam and war"]
    demo = build_app()
    demo.close()
    meta = json.loads((saved_baseline / META_FILE).read_text())
    meta["examples"] = ["", 42, "x" * 5000, "  A  history\tof Venice "]
    (saved_baseline / META_FILE).write_text(json.dumps(meta))
    assert example_titles_for_folder(saved_baseline) == ["A history of Venice"]
    meta.pop("examples")
    (saved_baseline / META_FILE).write_text(json.dumps(meta))
    assert example_titles() == list(FALLBACK_TITLES)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_app_starts_offline_without_split_or_data(saved_baseline, tmp_artifacts, tmp_path,
                                                      measure):
    """``python -m blgenre app`` with models but no split and no data: ready in seconds."""
    port = free_port()
    env = {**os.environ, "BLGENRE_ARTIFACTS": str(tmp_artifacts),
           "BLGENRE_DATA": str(tmp_path / "no-data-here"), "BLGENRE_CACHE": str(tmp_path / "c"),
           "HF_HUB_OFFLINE": "1"}
    assert not (tmp_artifacts / "split.csv").exists()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "blgenre", "app", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("ready in"):
                break
        seconds = time.perf_counter() - start
        assert lines and lines[-1].startswith("ready in"), "".join(lines)
        import httpx

        with httpx.Client(timeout=60) as http:
            event, payload = call(http, f"http://127.0.0.1:{port}/gradio_api/call/classify",
                                  "Poems of love and the sea")
        assert event == "complete" and set(payload[0]) == {"baseline"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    measure(f"python -m blgenre app, no split and no data: ready after {seconds:.1f} s")
    assert seconds < 180  # about 5 s on an idle 2-core machine; the old app needed the data
    assert not (tmp_artifacts / "split.csv").exists()


# --------------------------------------------------------------------------- one-line errors
def test_cli_app_one_line_errors(tmp_path, capsys, saved_baseline):
    assert main(["app", "--models", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such folder" in err
    (tmp_path / "empty").mkdir()
    assert main(["app", "--models", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no trained model" in err and "A baseline" in err
    bad = tmp_path / "bad"
    (bad / "fastai").mkdir(parents=True)
    (bad / "fastai" / META_FILE).write_text("[]")
    assert main(["app", "--models", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no model could be loaded" in err and "JSON object" in err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["app", "--port", str(port), "--models", str(saved_baseline.parent)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: port {port} on 127.0.0.1 is in use (is the app already running?); "
                   "choose another --port, or stop the program that uses it")
    assert main(["app", "--host", "no-such-host.invalid", "--models",
                 str(saved_baseline.parent)]) == 2
    assert capsys.readouterr().err.strip().startswith("error: --host no-such-host.invalid: not")
    with pytest.raises(SystemExit) as info:
        main(["app", "--port", "70000"])
    assert info.value.code == 2


def test_a_folder_of_the_wrong_kind_is_reported(saved_baseline, tmp_artifacts):
    import shutil

    shutil.copytree(saved_baseline, tmp_artifacts / "models" / "fastai")
    models, missing = load_available()
    assert set(models) == {"baseline"}
    assert "holds a 'baseline' model, not a 'fastai' model" in missing["fastai"]


# --------------------------------------------------------------------------- the book's models
@pytest.fixture(scope="module")
def book_models(seed_models):
    """The book's three real models (workshop mode), as the training chapters saved them."""
    root = seed_models
    if not all((root / name / META_FILE).is_file() for name in registry.names()):
        if os.environ.get("CI"):
            pytest.fail(f"the book build left no models under {root}")
        pytest.skip("the book's models are not under artifacts/models (build the book first)")
    return root


@pytest.fixture(scope="module")
def book_app(book_models, measure):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("BLGENRE_ARTIFACTS", raising=False)
        start = time.perf_counter()
        models, missing = load_available(book_models)
        assert missing == {}, missing
        demo = build_app(book_models, models=models)
        url = launch(demo, port=None, block=False)
        measure(f"app with the book's {len(models)} models started in "
                f"{time.perf_counter() - start:.1f} s")
        yield url, models
        demo.close()


def test_book_models_side_by_side(book_app):
    """The real models the book trained: all three answer, through the API, for one title."""
    from gradio_client import Client

    url, _ = book_app
    result = Client(url, verbose=False).predict("The mystery of the moor. A novel",
                                                api_name="/classify")
    assert set(result) == set(registry.names())
    for r in result.values():
        assert r["label"] in {"Fiction", "Non-fiction"}
        assert abs(r["prob_fiction"] + r["prob_non_fiction"] - 1) < 1e-5
    assert sum(r["label"] == "Fiction" for r in result.values()) >= 2


def test_load_50_clients_20_requests_book_models(book_app, measure):
    """50 concurrent clients x 20 requests: every answer equals the model's answer alone."""
    url, models = book_app
    expected = {t: predict_all(models, t) for t in TITLES}  # one caller, before the load
    latencies, errors, wall = hammer(url, TITLES, n_clients=50, n_requests=20,
                                     expected=expected)
    measure(summary(f"load test, the book's models ({', '.join(models)}), 50 clients x 20",
                    latencies, errors, wall))
    assert errors == [], errors[:5]
    assert len(latencies) == 1000

"""The demo app and its API, against a tiny baseline trained here on made-up titles.

One app runs (on loopback) for the whole module. It is called with gradio_client, with the curl
and JavaScript snippets the book documents, from headless Chromium, and by 20 concurrent clients.
The load test with the book's three real models and the hardening tests (concurrency, errors,
no outbound connections, starting offline) are in ``test_app_hardening.py``.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import make_rows

from blgenre import data
from blgenre.data.text import MAX_TITLE_CHARS
from blgenre.models.baseline import BaselineModel
from blgenre.sharing.app import api_examples, build_app, launch, load_available, parse_sse

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning",
                                        "ignore::DeprecationWarning")

EXAMPLES = ["The castle romance of love. A novel", "A history of geology in Scotland"]
FICTION_TITLE, NONFICTION_TITLE = "Poems of love and the sea", "Report on the railways of London"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, measure):
    """The app on a free loopback port, serving a baseline trained on made-up rows."""
    root = tmp_path_factory.mktemp("app") / "artifacts"
    books, _ = data.clean(make_rows())
    model = BaselineModel.train_on_split(books.iloc[:90], books.iloc[90:])
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BLGENRE_ARTIFACTS", str(root))
        model.save(root / "models" / "baseline")
        (root / "models" / "fastai").mkdir()  # being trained: no model.json yet
        start = time.perf_counter()
        demo = build_app(examples=EXAMPLES)
        url = launch(demo, port=None, block=False)
        measure(f"app started in {time.perf_counter() - start:.2f} s at {url}")
        assert url.startswith("http://127.0.0.1:")
        yield url
        demo.close()


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


def check_result(result: dict, label: str | None = None) -> None:
    assert set(result) == {"baseline"}
    r = result["baseline"]
    assert set(r) == {"label", "prob_fiction", "prob_non_fiction"}
    assert abs(r["prob_fiction"] + r["prob_non_fiction"] - 1) < 1e-5
    assert r["label"] == ("Fiction" if r["prob_fiction"] >= 0.5 else "Non-fiction")
    if label:
        assert r["label"] == label


def test_missing_models_are_named_with_their_chapter(tmp_artifacts):
    (tmp_artifacts / "models" / "fastai").mkdir(parents=True)
    models, missing = load_available()
    assert models == {}
    assert set(missing) == {"baseline", "fastai", "transformer"}
    assert "Training a fastai ULMFiT model" in missing["fastai"]
    assert "Fine-tuning a transformer" in missing["transformer"]


def test_python_client(client):
    check_result(client.predict(FICTION_TITLE, api_name="/classify"), "Fiction")
    check_result(client.predict(NONFICTION_TITLE, api_name="/classify"), "Non-fiction")


def test_documented_python_example(app_url):
    proc = subprocess.run([sys.executable, "-c", api_examples(app_url)["python"]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "'baseline': {'label': 'Non-fiction'" in proc.stdout


@pytest.mark.parametrize("title, message", [
    ("", "input is empty"),
    ("   \t\n ", "input is empty"),
    ("x" * (MAX_TITLE_CHARS + 1), "too long"),
])
def test_bad_titles_are_refused_clearly(client, title, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(title, api_name="/classify")


def test_non_latin_and_markup_titles_are_plain_text(client):
    check_result(client.predict("Путешествие по России", api_name="/classify"))
    check_result(client.predict("<script>alert(1)</script> A novel", api_name="/classify"))
    check_result(client.predict("x" * MAX_TITLE_CHARS, api_name="/classify"))


def test_documented_curl_example(app_url):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed")
    proc = subprocess.run(["bash", "-c", api_examples(app_url)["curl"]], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    event, payload = parse_sse(proc.stdout)
    assert event == "complete"
    check_result(payload[0], "Non-fiction")
    bad = subprocess.run(["bash", "-c", api_examples(app_url, "")["curl"]], capture_output=True,
                         text=True, timeout=60)
    event, payload = parse_sse(bad.stdout)
    assert event == "error" and "input is empty" in payload["error"]


def test_documented_javascript_example(app_url):
    if shutil.which("node") is None:
        pytest.skip("node not installed")
    proc = subprocess.run(["node", "--input-type=module", "-e", api_examples(app_url)["javascript"]],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    import json

    check_result(json.loads(proc.stdout), "Non-fiction")
    bad = subprocess.run(["node", "--input-type=module", "-e",
                          api_examples(app_url, "")["javascript"]],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "input is empty" in bad.stderr


@pytest.mark.browser
def test_browser_types_a_title_and_reads_the_prediction(app_url, browser):
    from blgenre.sharing.screenshot import classify_in_browser

    page = browser.new_page()
    text = classify_in_browser(page, app_url, FICTION_TITLE, "baseline")
    assert "Fiction" in text and "%" in text
    assert "Training a fastai ULMFiT model" in page.content()
    assert page.locator(f"text={EXAMPLES[0]}").count() >= 1
    # an empty title gives a message, not a prediction; markup stays text
    page.locator("#blgenre-title textarea").fill("")
    page.locator("#blgenre-classify").click()
    page.wait_for_function(
        "() => document.querySelector('#blgenre-message textarea').value"
        ".includes('empty')", timeout=20_000)
    page.locator("#blgenre-title textarea").fill("<img src=x id=pwned> A novel")
    page.locator("#blgenre-classify").click()
    page.wait_for_function(
        "() => document.querySelector('#blgenre-message textarea').value === 'OK'",
        timeout=20_000)
    assert page.locator("#pwned").count() == 0
    page.close()


def test_load_20_clients_25_requests_each(app_url, measure):
    """20 concurrent clients x 25 requests on loopback: every answer right; latency printed."""
    import httpx

    n_clients, n_requests = 20, 25
    titles = [(FICTION_TITLE, "Fiction"), (NONFICTION_TITLE, "Non-fiction")]
    latencies, errors, lock = [], [], threading.Lock()
    base = app_url.rstrip("/") + "/gradio_api/call/classify"

    def one_client(k: int) -> None:
        with httpx.Client(timeout=60) as http:
            for i in range(n_requests):
                title, want = titles[(k + i) % 2]
                t0 = time.perf_counter()
                event_id = http.post(base, json={"data": [title]}).json()["event_id"]
                event, payload = parse_sse(http.get(f"{base}/{event_id}").text)
                dt = time.perf_counter() - t0
                ok = event == "complete" and payload[0]["baseline"]["label"] == want
                with lock:
                    latencies.append(dt)
                    if not ok:
                        errors.append((title, event, payload))

    start = time.perf_counter()
    with ThreadPoolExecutor(n_clients) as pool:
        list(pool.map(one_client, range(n_clients)))
    wall = time.perf_counter() - start
    assert errors == []
    assert len(latencies) == n_clients * n_requests
    q = statistics.quantiles(latencies, n=20)
    measure(f"load test: {len(latencies)} requests from {n_clients} clients in {wall:.1f} s "
          f"({len(latencies) / wall:.0f}/s); latency p50 {statistics.median(latencies) * 1000:.0f}"
          f" ms, p95 {q[18] * 1000:.0f} ms")


@pytest.fixture
def tiny_model(tmp_artifacts):
    books, _ = data.clean(make_rows())
    model = BaselineModel.train_on_split(books.iloc[:90], books.iloc[90:])
    return model.save(tmp_artifacts / "models" / "baseline")


def test_widget_predicts_and_refuses_empty_titles(tiny_model):
    from blgenre.sharing.app import predict_all
    from blgenre.sharing.widget import prediction_widget, result_table

    widget = prediction_widget(value=FICTION_TITLE)
    widget.classify()  # must not raise, with or without a kernel
    table = result_table(predict_all(load_available()[0], FICTION_TITLE))
    assert table.loc["baseline", "label"] == "Fiction"
    widget.children[0].children[0].value = ""
    widget.classify()


def test_space_folder(tiny_model, tmp_path):
    from importlib.metadata import version

    from blgenre.sharing.space import hosted_space_url, space_embed_html, write_space

    folder = write_space(tmp_path / "space", examples=EXAMPLES)
    readme = (folder / "README.md").read_text()
    assert readme.startswith("---\n") and f"sdk_version: {version('gradio')}\n" in readme
    assert "sdk: gradio" in readme and "app_file: app.py" in readme
    reqs = (folder / "requirements.txt").read_text().split()
    assert f"scikit-learn=={version('scikit-learn')}" in reqs
    assert (folder / "artifacts" / "models" / "baseline" / "model.json").is_file()
    assert (folder / "blgenre" / "sharing" / "app.py").is_file()
    compile((folder / "app.py").read_text(), "app.py", "exec")
    assert hosted_space_url() == ""  # offline default: nothing embedded
    assert '<gradio-app src="https://a.hf.space">' in space_embed_html("https://a.hf.space")


def test_cli_app_defaults_to_loopback():
    from blgenre.__main__ import build_parser

    args = build_parser().parse_args(["app"])
    assert (args.host, args.port) == ("127.0.0.1", 7860)
    assert build_parser().parse_args(["app", "--port", "8001"]).port == 8001

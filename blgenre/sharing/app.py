"""The demo app: every saved model's prediction for one title, side by side, plus an HTTP API.

Serves the chapter 'A demo'. ``python -m blgenre app`` starts it on http://127.0.0.1:7860. The
core (loading the models, checking a title, predicting) does not import Gradio, so the Jupyter
widget in :mod:`blgenre.sharing.widget` shares it without the cost of loading the web framework.

The API has one documented endpoint, ``/classify``: one title in, a dict out,
``{model: {"label": ..., "prob_fiction": ..., "prob_non_fiction": ...}}``. A bad title (empty,
longer than :data:`blgenre.data.text.MAX_TITLE_CHARS`) is refused with a readable error message;
any other failure reaches the caller as one line, never as a library's traceback.
:func:`api_examples` writes the ways to call it (Python, curl, JavaScript) for a given address;
the book shows them and the tests run them.

Safe under concurrent use: each model answers one caller at a time (:func:`model_lock`; a fastai
learner or a fast tokenizer is not safe to share between threads), Gradio's queue admits
:data:`CONCURRENCY_LIMIT` requests at once and holds at most :data:`MAX_QUEUE` waiting. The app
starts from the model folders alone (example titles included, see
:mod:`blgenre.sharing.examples`), with Gradio's analytics off and never with a public share
link: launching it opens no connection beyond this machine.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import socket
import threading
import time
import unicodedata
import weakref
from pathlib import Path

import numpy as np

from blgenre.data.text import MAX_TITLE_CHARS, clean_title
from blgenre.errors import BLGenreError, InputError
from blgenre.models import META_FILE, load_model, read_meta, registry
from blgenre.paths import artifacts_dir
from blgenre.sharing.examples import example_titles  # noqa: F401 - part of the app's API

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
#: Requests Gradio runs at once. Each model serves one of them at a time (its lock), so more
#: would only add threads; 4 lets a request use one model while another uses the next.
CONCURRENCY_LIMIT = 4
#: Requests that may wait in Gradio's queue; beyond that a caller is told the queue is full.
MAX_QUEUE = 256
#: Where the limitations note points readers.
MODEL_CARDS_TEXT = "see the model cards in the book"
#: Stable element ids, used by the screenshot and the browser test.
IDS = {"title": "blgenre-title", "button": "blgenre-classify", "message": "blgenre-message"}

log = logging.getLogger(__name__)


class AppError(BLGenreError):
    """The app cannot start (no model, a busy port) or a model failed on a request."""


def label_id(name: str) -> str:
    return f"blgenre-pred-{name}"


def one_line(text: object) -> str:
    """``text`` on one line (whitespace collapsed), for messages shown to readers."""
    return " ".join(str(text).split())


# --------------------------------------------------------------------------- core (no Gradio)

def load_available(models_root: str | Path | None = None,
                   names: tuple[str, ...] | None = None) -> tuple[dict, dict]:
    """``(models, missing)``: loaded models by name, and a message for each one that is not there.

    Looks for every kind the book shares (:func:`blgenre.models.registry.names`) in ``models_root/<name>``. A
    folder without a ``model.json`` (not trained yet, or still being written) counts as missing;
    a model that fails its integrity check or does not load is reported in one line, not loaded.
    """
    root = Path(models_root) if models_root else artifacts_dir("models", create=False)
    models, missing = {}, {}
    for name in names or registry.names():
        kind, folder = registry.get(name), root / name
        if not (folder / META_FILE).is_file():
            missing[name] = kind.missing_message(folder)
            continue
        try:
            found = read_meta(folder)["kind"]
            if found != name:
                raise AppError(f"{folder} holds a {found!r} model, not a {name!r} model")
            models[name] = load_model(folder)
        except Exception as exc:  # noqa: BLE001 - any failure: this model is left out, in one line
            missing[name] = f"{name} model in {folder} could not be loaded: {one_line(exc)}"
    return models, missing


def check_title(title: object) -> str:
    """The cleaned title, or :class:`InputError` with a message for the reader."""
    raw = "" if title is None else str(title)
    if len(raw) > MAX_TITLE_CHARS:
        raise InputError(f"The title is too long ({len(raw):,} characters); the limit is "
                         f"{MAX_TITLE_CHARS:,}. Catalogue titles are far shorter.")
    cleaned = clean_title(raw)
    if not cleaned:
        raise InputError("Please enter a book title: the input is empty.")
    return cleaned


def script_note(title: str) -> str:
    """A caution for titles with letters but none in the Latin script (the models saw few)."""
    letters = [ch for ch in title if ch.isalpha()]
    if letters and not any("LATIN" in unicodedata.name(ch, "") for ch in letters):
        return ("Note: this title has no letters in the Latin script. The models learned from "
                "catalogue titles that are almost all in Latin script, so treat this prediction "
                "with caution.")
    return ""


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model) -> threading.Lock:
    """The lock that lets one caller at a time use ``model`` (one per model object)."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


def predict_one(name: str, model, title: str) -> list[float]:
    """The label probabilities of one cleaned title; :class:`AppError` if the model fails."""
    try:
        with model_lock(model):
            probs = np.asarray(model.predict_proba([title]), dtype=float)[0]
    except Exception as exc:  # noqa: BLE001 - the caller gets one line, the server log the rest
        log.exception("the %s model failed on a title", name)
        raise AppError(f"The {name} model could not classify this title "
                       f"({type(exc).__name__}); the details are in the server's log.") from None
    if not (np.isfinite(probs).all() and abs(probs.sum() - 1) < 1e-3):
        raise AppError(f"The {name} model returned invalid probabilities for this title.")
    return [float(x) for x in probs]


def predict_all(models: dict, title: object) -> dict:
    """``{model: {"label", "prob_fiction", "prob_non_fiction"}}`` for one title (checked first)."""
    from blgenre.models.lifecycle import model_labels
    from blgenre.models.predict_io import slug

    cleaned = check_title(title)
    out = {}
    for name, model in models.items():
        probs = predict_one(name, model, cleaned)
        labels = model_labels(model.meta)  # two for the book's models, more for your own
        best = max(range(len(probs)), key=lambda j: (probs[j], -j))  # a tie goes to the first
        out[name] = {"label": labels[best],
                     **{f"prob_{slug(lab)}": round(p, 6) for lab, p in zip(labels, probs,
                                                                           strict=True)}}
    return out


# --------------------------------------------------------------------------- the Gradio app

LIMITATIONS = (
    "**Limitations.** The models learned from the titles of digitised British Library books "
    "published in the 19th century, labelled by volunteers. A title alone often does not reveal "
    "a book's genre, the models are least reliable on fiction and on titles in languages other "
    "than English, and they know nothing about books from other times or collections. "
    "Probabilities are the models' own and are not calibrated guarantees. For what each model "
    "was trained on and how well it did, {cards}."
)


def _no_analytics() -> None:
    """Gradio's analytics and version check call api.gradio.app: off for this process."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"


def build_app(models_root: str | Path | None = None, examples: list[str] | None = None,
              model_cards_url: str | None = None, concurrency_limit: int = CONCURRENCY_LIMIT,
              models: dict | None = None, missing: dict | None = None,
              max_queue: int = MAX_QUEUE):
    """The Gradio Blocks app for the models found under ``models_root`` (default artifacts).

    ``models`` (name -> loaded model) and ``missing`` (name -> why it is not there) skip the
    loading; ``examples`` defaults to the titles saved in the model folders.
    """
    _no_analytics()
    import gradio as gr

    start = time.perf_counter()
    if models is None:
        models, missing = load_available(models_root)
    missing = missing or {}
    if examples is None:
        examples = example_titles(models_root)
    cards = (f"[{MODEL_CARDS_TEXT}]({model_cards_url})" if model_cards_url
             else MODEL_CARDS_TEXT)

    def classify(title: str) -> dict:
        """Classify one book title as Fiction or Non-fiction with every available model.

        Returns {model: {"label", "prob_fiction", "prob_non_fiction"}}.
        """
        if not models:
            raise gr.Error(one_line("No model is available. " + " ".join(missing.values())))
        try:
            return predict_all(models, title)
        except BLGenreError as exc:
            raise gr.Error(one_line(exc)) from None
        except Exception as exc:  # noqa: BLE001 - never a library's internals to the caller
            log.exception("classify failed")
            raise gr.Error(f"The request failed ({type(exc).__name__}); the details are in the "
                           "server's log.") from None

    def show(title: str):
        try:
            result = predict_all(models, title)
        except BLGenreError as exc:
            return [None] * len(models) + [one_line(exc)]
        except Exception as exc:  # noqa: BLE001
            log.exception("classify failed")
            return [None] * len(models) + [f"The request failed ({type(exc).__name__})."]
        labels = [{"Fiction": r["prob_fiction"], "Non-fiction": r["prob_non_fiction"]}
                  for r in result.values()]
        return labels + [script_note(check_title(title)) or "OK"]

    with gr.Blocks(title="Fiction or non-fiction? 19th-century book titles",
                   analytics_enabled=False) as demo:
        gr.Markdown("# Fiction or non-fiction?\nType the title of a 19th-century book, or "
                    "pick one of the example titles below, and compare what each model predicts.")
        with gr.Row():
            box = gr.Textbox(label="Book title", lines=2, elem_id=IDS["title"], scale=4,
                             placeholder="e.g. The castle of Otranto, a Gothic story")
            button = gr.Button("Classify", variant="primary", elem_id=IDS["button"], scale=1)
        message = gr.Textbox(label="Message", interactive=False, elem_id=IDS["message"])
        with gr.Row():
            outputs = [gr.Label(label=name, num_top_classes=2, elem_id=label_id(name))
                       for name in models]
            for name, text in missing.items():
                gr.Markdown(f"**{name}**: not available ({text}).")
        if examples:
            gr.Examples(examples=[[t] for t in examples], inputs=box, label="Example titles")
        gr.Markdown(LIMITATIONS.format(cards=cards))
        button.click(show, inputs=box, outputs=[*outputs, message], api_visibility="private",
                     concurrency_limit=concurrency_limit)
        box.submit(show, inputs=box, outputs=[*outputs, message], api_visibility="private",
                   concurrency_limit=concurrency_limit)
        gr.api(classify, api_name="classify", concurrency_limit=concurrency_limit)
    demo.queue(default_concurrency_limit=concurrency_limit, max_size=max_queue)
    demo.blgenre_models = list(models)
    demo.blgenre_missing = missing
    demo.blgenre_build_seconds = time.perf_counter() - start
    return demo


def check_address(host: str, port: int | None) -> None:
    """:class:`AppError` in one line unless ``host:port`` can be bound on this machine."""
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise AppError(f"--host {host}: not a name or address of this machine; the default "
                       f"{DEFAULT_HOST} serves this machine only") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AppError(f"port {port} on {host} is in use (is the app already running?); "
                               "choose another --port, or stop the program that uses it") from None
            raise AppError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); check "
                           "--host and --port") from None


def launch(demo, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, block: bool = True,
           **kwargs) -> str:
    """Start ``demo`` on ``host:port`` (loopback by default); returns its local URL.

    Never with a public share link (``share=False`` even where Gradio would choose one, as on
    Colab or Kaggle) and with analytics off; a busy port or an unknown host is an
    :class:`AppError` in one line.
    """
    _no_analytics()
    if kwargs.pop("share", False):
        raise AppError("the app does not make public share links; host it on a Space instead")
    if port:
        check_address(host, port)
    try:
        _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                                inline=False, quiet=True, show_error=False, share=False,
                                **kwargs)
    except OSError as exc:
        where = f"{host}:{port}" if port else host
        raise AppError(f"cannot start the app on {where} ({one_line(exc).split('. ')[0]}); "
                       "choose another --port, or stop the program that uses it") from None
    return url


# --------------------------------------------------------------------------- API examples

def api_examples(url: str, title: str = "A history of the railways in Scotland") -> dict:
    """Ready-to-run snippets that call ``/classify`` at ``url``: python, curl and javascript."""
    url = url.rstrip("/")
    python = (
        "from gradio_client import Client\n\n"
        f"client = Client({url!r}, verbose=False)\n"
        f"result = client.predict({title!r}, api_name=\"/classify\")\n"
        "print(result)\n"
    )
    payload = shlex.quote(json.dumps({"data": [title]}))
    curl = (
        f"EVENT_ID=$(curl -s -X POST {url}/gradio_api/call/classify \\\n"
        f"  -H 'Content-Type: application/json' -d {payload} \\\n"
        "  | python3 -c 'import json, sys; print(json.load(sys.stdin)[\"event_id\"])')\n"
        f"curl -s -N {url}/gradio_api/call/classify/$EVENT_ID\n"
    )
    javascript = (
        f"const base = {json.dumps(url)};\n"
        f"const title = {json.dumps(title)};\n"
        "// 1. submit the title: the answer is an event id\n"
        "const post = await fetch(`${base}/gradio_api/call/classify`, {\n"
        "  method: \"POST\",\n"
        "  headers: { \"Content-Type\": \"application/json\" },\n"
        "  body: JSON.stringify({ data: [title] }),\n"
        "});\n"
        "const { event_id } = await post.json();\n"
        "// 2. read the result from the event stream (server-sent events)\n"
        "const stream = await (await fetch(`${base}/gradio_api/call/classify/${event_id}`)).text();\n"
        "const lines = stream.trim().split(\"\\n\");\n"
        "const event = lines.findLast((l) => l.startsWith(\"event:\")).slice(6).trim();\n"
        "const data = JSON.parse(lines.findLast((l) => l.startsWith(\"data:\")).slice(5));\n"
        "if (event !== \"complete\") throw new Error(`${event}: ${JSON.stringify(data)}`);\n"
        "console.log(JSON.stringify(data[0], null, 2));\n"
    )
    return {"python": python, "curl": curl, "javascript": javascript}


def parse_sse(text: str) -> tuple[str, object]:
    """Last ``(event, data)`` of a server-sent event stream as Gradio's ``/call`` GET returns it."""
    event, data = "", None
    for line in text.splitlines():
        if line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            raw = line[5:].strip()
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                data = raw
    return event, data


def no_model_message(root: Path) -> str:
    """What to tell a reader who starts the app before any model was trained."""
    chapters = ", ".join(f"'{registry.get(n).chapter_title}'" for n in registry.names())
    return (f"no trained model under {root}: build the book, or run one of the chapters "
            f"{chapters} first (or pass --models with the folder that holds them)")


def main(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
         models_root: str | None = None) -> int:
    """Entry point of ``python -m blgenre app``."""
    start = time.perf_counter()
    root = Path(models_root) if models_root else artifacts_dir("models", create=False)
    if models_root and not root.is_dir():
        raise AppError(f"--models {models_root}: no such folder")
    models, missing = load_available(root)
    if not models:
        raise AppError(no_model_message(root) if not any(
            (root / n / META_FILE).is_file() for n in registry.names()) else
            "no model could be loaded: " + " ".join(missing.values()))
    demo = build_app(root, models=models, missing=missing,
                     model_cards_url=os.environ.get("BLGENRE_MODEL_CARDS_URL"))
    shown = ", ".join(demo.blgenre_models) or "none"
    print(f"models: {shown}", flush=True)
    for text in demo.blgenre_missing.values():
        print(f"note: {text}", flush=True)
    url = launch(demo, host, port, block=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {host}: anyone who can reach this machine can use the app",
              flush=True)
    print(f"ready in {time.perf_counter() - start:.1f} s at {url} (Ctrl+C to stop)", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


__all__ = ["AppError", "api_examples", "build_app", "check_title", "example_titles",
           "launch", "load_available", "model_lock", "parse_sse", "predict_all", "script_note"]

"""The demo app: every saved model's prediction for one title, side by side, plus an HTTP API.

``python -m blgenre app`` starts it on http://127.0.0.1:7860. The core (loading the models,
checking a title, predicting) does not import Gradio, so the Jupyter widget in
:mod:`blgenre.sharing.widget` shares it without the cost of loading the web framework.

The API has one documented endpoint, ``/classify``: one title in, a dict out,
``{model: {"label": ..., "prob_fiction": ..., "prob_non_fiction": ...}}``. A bad title (empty,
longer than :data:`blgenre.data.text.MAX_TITLE_CHARS`) is refused with a readable error message.
:func:`api_examples` writes the ways to call it (Python, curl, JavaScript) for a given address;
the book shows them and the tests run them.
"""

from __future__ import annotations

import json
import os
import shlex
import time
import unicodedata
from pathlib import Path

from blgenre.data.text import MAX_TITLE_CHARS, clean_title
from blgenre.errors import InputError, ModelError
from blgenre.models import KINDS, load_model, missing_model_message
from blgenre.paths import artifacts_dir

#: The models the app looks for, in display order.
MODEL_NAMES = ("baseline", "fastai", "transformer")
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860
#: Where the limitations note points readers.
MODEL_CARDS_TEXT = "see the model cards in the book"
#: Stable element ids, used by the screenshot and the browser test.
IDS = {"title": "blgenre-title", "button": "blgenre-classify", "message": "blgenre-message"}


def label_id(name: str) -> str:
    return f"blgenre-pred-{name}"


# --------------------------------------------------------------------------- core (no Gradio)

def load_available(models_root: str | Path | None = None,
                   names: tuple[str, ...] = MODEL_NAMES) -> tuple[dict, dict]:
    """``(models, missing)``: loaded models by name, and a message for each one that is not there.

    A folder without a usable ``model.json`` (not trained yet, or still being written) counts as
    missing; a model whose files fail their integrity check is reported, not loaded.
    """
    root = Path(models_root) if models_root else artifacts_dir("models", create=False)
    models, missing = {}, {}
    for name in names:
        folder = root / name
        if not (folder / "model.json").is_file():
            missing[name] = missing_model_message(name, folder)
            continue
        try:
            models[name] = load_model(folder)
        except (ModelError, ImportError, OSError) as exc:
            missing[name] = f"{name} model in {folder} could not be loaded: {exc}"
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


def predict_all(models: dict, title: object) -> dict:
    """``{model: {"label", "prob_fiction", "prob_non_fiction"}}`` for one title (checked first)."""
    from blgenre.models.lifecycle import model_labels
    from blgenre.models.predict_io import slug

    cleaned = check_title(title)
    out = {}
    for name, model in models.items():
        probs = [float(x) for x in model.predict_proba([cleaned])[0]]
        labels = model_labels(model.meta)  # two for the book's models, more for your own
        best = max(range(len(probs)), key=lambda j: (probs[j], -j))  # a tie goes to the first
        out[name] = {"label": labels[best],
                     **{f"prob_{slug(lab)}": round(p, 6) for lab, p in zip(labels, probs,
                                                                           strict=True)}}
    return out


def example_titles(n: int = 6, seed: int = 0) -> list[str]:
    """A few real, short titles from the test split: half fiction, half non-fiction."""
    from blgenre.data import split

    test = split.part("test")
    test = test[test["title"].str.len().between(15, 90)]
    per_label = [g.sample(min(len(g), n // 2), random_state=seed)
                 for _, g in test.groupby("label")]
    columns = [g["title"].tolist() for g in per_label]
    picked = [t for pair in zip(*columns, strict=False) for t in pair]
    return picked[:n]


# --------------------------------------------------------------------------- the Gradio app

LIMITATIONS = (
    "**Limitations.** The models learned from the titles of digitised British Library books "
    "published in the 19th century, labelled by volunteers. A title alone often does not reveal "
    "a book's genre, the models are least reliable on fiction and on titles in languages other "
    "than English, and they know nothing about books from other times or collections. "
    "Probabilities are the models' own and are not calibrated guarantees. For what each model "
    "was trained on and how well it did, {cards}."
)


def build_app(models_root: str | Path | None = None, examples: list[str] | None = None,
              model_cards_url: str | None = None, concurrency_limit: int = 4):
    """The Gradio Blocks app for the models found under ``models_root`` (default artifacts)."""
    import gradio as gr

    start = time.perf_counter()
    models, missing = load_available(models_root)
    if examples is None:
        examples = example_titles()
    cards = (f"[{MODEL_CARDS_TEXT}]({model_cards_url})" if model_cards_url
             else MODEL_CARDS_TEXT)

    def classify(title: str) -> dict:
        """Classify one book title as Fiction or Non-fiction with every available model.

        Returns {model: {"label", "prob_fiction", "prob_non_fiction"}}.
        """
        if not models:
            raise gr.Error("No model is available. " + " ".join(missing.values()))
        try:
            return predict_all(models, title)
        except InputError as exc:
            raise gr.Error(str(exc)) from None

    def show(title: str):
        try:
            result = predict_all(models, title)
        except InputError as exc:
            return [None] * len(models) + [str(exc)]
        labels = [{"Fiction": r["prob_fiction"], "Non-fiction": r["prob_non_fiction"]}
                  for r in result.values()]
        return labels + [script_note(check_title(title)) or "OK"]

    with gr.Blocks(title="Fiction or non-fiction? 19th-century book titles") as demo:
        gr.Markdown("# Fiction or non-fiction?\nType the title of a 19th-century book, or "
                    "pick one of the real titles below, and compare what each model predicts.")
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
            gr.Examples(examples=[[t] for t in examples], inputs=box,
                        label="Titles from the book's test split")
        gr.Markdown(LIMITATIONS.format(cards=cards))
        button.click(show, inputs=box, outputs=[*outputs, message], api_visibility="private",
                     concurrency_limit=concurrency_limit)
        box.submit(show, inputs=box, outputs=[*outputs, message], api_visibility="private",
                   concurrency_limit=concurrency_limit)
        gr.api(classify, api_name="classify", concurrency_limit=concurrency_limit)
    demo.blgenre_models = list(models)
    demo.blgenre_missing = missing
    demo.blgenre_build_seconds = time.perf_counter() - start
    return demo


def launch(demo, host: str = DEFAULT_HOST, port: int | None = DEFAULT_PORT, block: bool = True,
           **kwargs) -> str:
    """Start ``demo`` on ``host:port`` (loopback by default); returns its local URL."""
    _, url, _ = demo.launch(server_name=host, server_port=port, prevent_thread_lock=not block,
                            inline=False, quiet=True, show_error=True, **kwargs)
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


def main(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
         models_root: str | None = None) -> int:
    """Entry point of ``python -m blgenre app``."""
    start = time.perf_counter()
    demo = build_app(models_root, model_cards_url=os.environ.get("BLGENRE_MODEL_CARDS_URL"))
    shown = ", ".join(demo.blgenre_models) or "none"
    print(f"models: {shown}", flush=True)
    for text in demo.blgenre_missing.values():
        print(f"note: {text}", flush=True)
    url = launch(demo, host, port, block=False)
    print(f"ready in {time.perf_counter() - start:.1f} s at {url} (Ctrl+C to stop)", flush=True)
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    return 0


__all__ = ["KINDS", "MODEL_NAMES", "api_examples", "build_app", "check_title", "launch",
           "load_available", "parse_sse", "predict_all", "script_note"]

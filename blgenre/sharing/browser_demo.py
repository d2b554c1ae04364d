"""The models in the reader's browser: the live demo of chapter 'Demo apps', and a one-file copy.

:func:`write_site` gathers what the live demo loads into ``artifacts/browser/``: the checked
ONNX exports (:mod:`blgenre.models.onnx_export`; the transformer's int8 version, with a copy of
its tokenizer), ONNX Runtime Web and the tokenizers library from ``node_modules/`` (pinned in
``package.json``, installed by ``npm ci --ignore-scripts``; nothing comes from a CDN), and the
widget's own script (``static/``). The book's Sphinx extension copies that folder into the built
book's ``_static/blgenre-demo/``, so the page works from any static host.

:func:`write_one_file` writes ``artifacts/demo/blgenre-demo.html``: the same widget with every
file embedded (gzip, then base64), which works when opened from disk with no server and no
network: a file to e-mail or put on a USB stick.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import shutil
from importlib import resources
from pathlib import Path

from blgenre.errors import BLGenreError
from blgenre.models import registry
from blgenre.models.lifecycle import read_meta
from blgenre.models.onnx_export import is_current
from blgenre.models.onnx_runtime import ONNX_FILES, onnx_record
from blgenre.paths import PROJECT_ROOT, artifacts_dir, model_dir

#: Files taken from the npm packages (name in the demo folder -> path under node_modules).
NPM_FILES = {
    "ort.wasm.bundle.min.mjs": "onnxruntime-web/dist/ort.wasm.bundle.min.mjs",
    "ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
    "tokenizers.min.mjs": "@huggingface/tokenizers/dist/tokenizers.min.mjs",
}
WASM = "ort-wasm-simd-threaded.wasm"
#: The widget's own files (package data in ``blgenre/sharing/static``).
STATIC_FILES = ("demo-core.js", "blgenre-demo.js")
#: Where the built book serves the demo from, relative to its HTML root.
BOOK_FOLDER = "_static/blgenre-demo"
ONE_FILE_NAME = "blgenre-demo.html"
LABELS = {"transformer": "Transformer (int8)", "baseline": "Baseline (TF-IDF)"}


def node_modules() -> Path:
    """``BLGENRE_NODE_MODULES`` if set, else ``node_modules/`` beside the package."""
    return Path(os.environ.get("BLGENRE_NODE_MODULES") or PROJECT_ROOT / "node_modules")


def npm_file(name: str) -> Path:
    path = node_modules() / NPM_FILES[name]
    if not path.is_file():
        raise BLGenreError(f"{path}: missing; install the demo's JavaScript with "
                           "`npm ci --ignore-scripts` (part of `make install`)")
    return path


def static_text(name: str) -> str:
    return resources.files("blgenre.sharing").joinpath("static", name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the models
def browser_tokenizer(src: Path) -> dict:
    """``tokenizer.json`` without the training run's padding (and with the model's truncation).

    ``save_pretrained`` writes the padding and truncation used in training into the file; the
    widget encodes one title at a time and truncates itself, as the Python model does.
    """
    data = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    data["padding"] = None
    data["truncation"] = None
    return data


def exported_models() -> list[tuple[str, Path, dict]]:
    """Kinds whose saved model has a current ONNX export: (name, folder, ``onnx`` record)."""
    out = []
    for name in registry.names():
        folder = model_dir(name)
        try:
            meta = read_meta(folder)
        except BLGenreError:
            continue
        record = onnx_record(meta)
        if record.get("exported") and is_current(meta):
            out.append((name, folder, record))
    return out


def copy_models(dest: Path) -> list[dict]:
    """Copy each exported model's browser files into ``dest``; their manifest entries."""
    specs = []
    for name, folder, record in exported_models():
        if not record["checks"]["fp32"]["passed"]:
            continue  # the export does not compute what the model computes
        # int8 where there is one, whatever its check said (the float32 transformer would make
        # the page four times heavier); the chapter shows how often it changes a label
        precision = "int8" if ONNX_FILES["int8"] in record["files"] else "fp32"
        target = dest / name
        target.mkdir(parents=True, exist_ok=True)
        onnx_name = Path(ONNX_FILES[precision]).name
        shutil.copy2(folder / ONNX_FILES[precision], target / onnx_name)
        spec = {"name": name, "label": LABELS.get(name, name), "precision": precision,
                "file": f"{name}/{onnx_name}"}
        if registry.get(name).onnx == "torch":
            (target / "tokenizer.json").write_text(json.dumps(browser_tokenizer(folder)))
            shutil.copy2(folder / "tokenizer_config.json", target / "tokenizer_config.json")
            meta = read_meta(folder)
            spec.update(type="transformer", tokenizer=f"{name}/tokenizer.json",
                        tokenizer_config=f"{name}/tokenizer_config.json",
                        max_length=int(meta.get("settings", {}).get("max_length", 128)))
            spec["label"] = f"Transformer ({precision})"
        else:
            spec.update(type="tfidf", classes=["Fiction", "Non-fiction"], output="probabilities")
        specs.append(spec)
    return specs


# --------------------------------------------------------------------------- the site folder
def write_site(dest: str | Path | None = None) -> Path:
    """Write the live demo's files (models, JavaScript, wasm, ``models.json``) into ``dest``."""
    dest = Path(dest) if dest else artifacts_dir("browser")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in NPM_FILES:
        shutil.copy2(npm_file(name), dest / name)
    for name in STATIC_FILES:
        (dest / name).write_text(static_text(name), encoding="utf-8")
    specs = copy_models(dest)
    if not specs:
        raise BLGenreError("no model has a checked ONNX export: run "
                           "blgenre.models.onnx_export.ensure_onnx(...) for the trained models")
    loaded = [WASM] + [f for s in specs for f in (s["file"], s.get("tokenizer"),
                                                   s.get("tokenizer_config")) if f]
    manifest = {"wasm": WASM, "models": specs,
                "total_bytes": sum((dest / f).stat().st_size for f in loaded)}
    (dest / "models.json").write_text(json.dumps(manifest, indent=1))
    return dest


def page_weight(site: str | Path) -> int:
    """Bytes the live demo loads: every file of the demo folder (all are fetched once)."""
    return sum(p.stat().st_size for p in Path(site).rglob("*") if p.is_file()
               and p.name != ONE_FILE_NAME)


def widget_html(script_src: str, title: str = "") -> str:
    """The widget's HTML, loading its boot script from ``script_src`` (relative to the page)."""
    body = static_text("widget.html").replace("{{title}}", html.escape(title, quote=True))
    return body + f'<script type="module" src="{html.escape(script_src, quote=True)}"></script>\n'


# --------------------------------------------------------------------------- one file
ONE_FILE_BOOT = """
const files = {};
for (const tag of document.querySelectorAll("script[data-blgenre-file]")) {
  files[tag.dataset.blgenreFile] = tag;
}
function fromBase64(text) {
  if (Uint8Array.fromBase64) return Uint8Array.fromBase64(text);
  const bin = atob(text), out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
async function load(name, onBytes) {
  const tag = files[name];
  if (!tag) throw new Error(`${name}: not in this file`);
  const packed = new Blob([fromBase64(tag.textContent.trim())]);
  const buffer = await new Response(packed.stream().pipeThrough(new DecompressionStream("gzip")))
    .arrayBuffer();
  if (onBytes) onBytes(buffer.byteLength);
  return buffer;
}
async function module(name) {
  const text = await load(name);
  return import(URL.createObjectURL(new Blob([text], {type: "text/javascript"})));
}
const root = document.getElementById("blgenre-demo");
window.blgenreDemo = (async () => {
  const ort = await module("ort.wasm.bundle.min.mjs");
  const { Tokenizer } = await module("tokenizers.min.mjs");
  const { start } = await module("demo-core.js");
  return start(root, { ort, Tokenizer, load });
})().catch((err) => {
  root.querySelector(".blgenre-status").textContent = `The demo could not start: ${err.message}`;
  root.dataset.state = "error";
  throw err;
});
"""


def write_one_file(site: str | Path | None = None, path: str | Path | None = None) -> Path:
    """One HTML file holding the demo of ``site`` (see :func:`write_site`), for use offline."""
    site = Path(site) if site else artifacts_dir("browser")
    path = Path(path) if path else artifacts_dir("demo") / ONE_FILE_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    names = sorted(str(p.relative_to(site)) for p in site.rglob("*")
                   if p.is_file() and p.name not in ("blgenre-demo.js", ONE_FILE_NAME))
    parts = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
             "<title>Genre of a 19th-century book title: offline demo</title>\n"
             "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n</head>"
             "<body style=\"font-family: sans-serif; max-width: 60em; margin: 1em auto\">\n"
             "<h1>Fiction or non-fiction? A 19th-century title classifier</h1>\n"
             "<p>The models of the book <i>Genre classification of 19th-century British "
             "Library books</i>, in one file: it works offline, from disk.</p>\n",
             static_text("widget.html").replace("{{title}}", "")]
    for name in names:
        data = base64.b64encode(gzip.compress((site / name).read_bytes(), 9, mtime=0))
        parts.append(f'<script type="application/octet-stream" data-blgenre-file='
                     f'"{html.escape(name)}">{data.decode("ascii")}</script>\n')
    parts.append(f'<script type="module">{ONE_FILE_BOOT}</script>\n</body></html>\n')
    path.write_text("".join(parts), encoding="utf-8")
    return path


def install_into_book(outdir: str | Path) -> Path | None:
    """Copy the demo folder and the one-file demo into a built book (``_static/blgenre-demo``)."""
    site = artifacts_dir("browser", create=False)
    if not (site / "models.json").is_file():
        return None
    dest = Path(outdir) / BOOK_FOLDER
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(site, dest)
    one_file = artifacts_dir("demo", create=False) / ONE_FILE_NAME
    if one_file.is_file():
        shutil.copy2(one_file, dest / ONE_FILE_NAME)
    return dest


# --------------------------------------------------------------------------- measuring
MEASURE_JS = """async ({titles, name}) => {
  const d = await window.blgenreDemo;
  const t0 = performance.now();
  for (const t of titles) await d.classify([t], [name]);
  return (performance.now() - t0) / titles.length;
}"""


def measure_in_browser(site: str | Path, titles: list[str], one_file: str | Path | None = None,
                       timeout_ms: int = 120_000) -> dict:
    """Open the demo of ``site`` in headless Chromium, served on loopback with every other
    request refused, and measure: seconds until ready (after navigation), milliseconds per title
    for each model (one title at a time), page weight; the same readiness for ``one_file``
    opened from disk. Run from a worker thread (Playwright's sync API and Jupyter's event loop
    do not mix)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_measure, Path(site), titles, one_file, timeout_ms).result()


def serve_folder(folder: Path):
    """An HTTP server for ``folder`` on loopback, in a thread (call ``shutdown()`` when done)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def open_offline(browser, url: str, timeout_ms: int = 120_000):
    """A new page at ``url`` (requests beyond loopback and the page refused, and listed), once
    the demo is ready; returns the page, the demo's ``readyMs`` and model names, the refusals."""
    page = browser.new_page()
    blocked = []

    def route(r):
        if r.request.url.startswith(("http://127.0.0.1", "file:", "blob:", "data:")):
            return r.continue_()
        blocked.append(r.request.url)
        return r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_function("document.getElementById('blgenre-demo').dataset.state !== 'loading'",
                           timeout=timeout_ms)
    if page.eval_on_selector("#blgenre-demo", "e => e.dataset.state") != "ready":
        raise BLGenreError(f"{url}: the demo did not start: {page.inner_text('.blgenre-status')}")
    info = page.evaluate("async () => { const d = await window.blgenreDemo;"
                         " return {readyMs: d.readyMs, names: d.names}; }")
    return page, info, blocked


def _measure(site: Path, titles: list[str], one_file, timeout_ms: int) -> dict:
    import tempfile

    from playwright.sync_api import sync_playwright

    from blgenre.sharing.screenshot import CHROMIUM_ARGS, chromium_path

    exe = chromium_path()
    if exe is None:
        raise BLGenreError("no chromium on PATH: install it (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        root = Path(tmp)
        (root / "chapters").mkdir()
        (root / "_static").mkdir()
        (root / BOOK_FOLDER).symlink_to(site.resolve(), target_is_directory=True)
        (root / "chapters" / "demo.html").write_text(
            "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
            + widget_html(f"../{BOOK_FOLDER}/blgenre-demo.js") + "</body></html>")
        server = serve_folder(root)
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page, info, blocked = open_offline(
                browser, f"http://127.0.0.1:{server.server_port}/chapters/demo.html", timeout_ms)
            page.evaluate(MEASURE_JS, {"titles": titles[:3], "name": info["names"][0]})  # warm-up
            result = {"ready_s": info["readyMs"] / 1000, "page_weight_mb": page_weight(site) / 1e6,
                      "blocked_requests": blocked, "n_titles": len(titles),
                      "ms_per_title": {name: page.evaluate(MEASURE_JS, {"titles": titles,
                                                                        "name": name})
                                       for name in info["names"]}}
            if one_file:
                _, one, blocked = open_offline(browser, Path(one_file).resolve().as_uri(), timeout_ms)
                result.update(one_file_mb=Path(one_file).stat().st_size / 1e6,
                              one_file_ready_s=one["readyMs"] / 1000)
                result["blocked_requests"] += blocked
        finally:
            browser.close()
            server.shutdown()
    return result

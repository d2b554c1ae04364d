"""Headless Chromium, driven by Playwright: a picture of the running demo app for the static book.

A launched Gradio app saves an ``<iframe>`` pointing at a local server in the executed notebook,
which is a dead grey box once the book is published. Instead, the chapter types a title into the
real app, waits for the predictions and keeps a screenshot (:func:`app_screenshot`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from blgenre.sharing.app import IDS, label_id

#: Flags for a quiet, offline, sandbox-free Chromium (containers, CI).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """The system Chromium (Debian's ``chromium``), or None if it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def classify_in_browser(page, url: str, title: str, model: str, timeout_ms: int = 30_000) -> str:
    """Open the app at ``url`` in ``page``, type ``title``, click Classify; the first label's text."""
    page.goto(url, wait_until="domcontentloaded", timeout=timeout_ms)
    box = page.locator(f"#{IDS['title']} textarea")
    box.wait_for(timeout=timeout_ms)
    box.fill(title)
    page.locator(f"#{IDS['button']}").click()
    message = page.locator(f"#{IDS['message']} textarea")
    page.wait_for_function(
        "(el) => el.value !== ''", arg=message.element_handle(), timeout=timeout_ms)
    return page.locator(f"#{label_id(model)}").inner_text(timeout=timeout_ms)


def app_screenshot(url: str, title: str, path: str | Path, model: str = "baseline",
                   width: int = 1100, height: int = 900) -> Path:
    """Type ``title`` into the app at ``url``, classify it and save a full-page PNG at ``path``.

    Playwright's sync API refuses to run inside a running asyncio loop (a Jupyter kernel has
    one), so the browser is driven from a worker thread.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_screenshot, url, title, path, model, width, height).result()


def _screenshot(url: str, title: str, path: str | Path, model: str, width: int,
                height: int) -> Path:
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("no chromium on PATH: install it (Debian: apt-get install chromium)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            classify_in_browser(page, url, title, model)
            page.wait_for_timeout(300)  # let the label bars finish their animation
            page.screenshot(path=str(path), full_page=True)
        finally:
            browser.close()
    return path

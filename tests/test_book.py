"""The whole book: built with warnings as errors, then opened in headless Chromium.

The build executes every chapter (cached: only changed chapters re-run), exactly as
``make book`` does. The browser test checks what a reader sees: headings, figures that load,
internal links that resolve, and no script fetched from another host.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from urllib.parse import urljoin, urlparse

import pytest

from blgenre.book.notebooks import toc_pages
from blgenre.paths import PROJECT_ROOT

pytestmark = pytest.mark.book


def test_every_chapter_built_and_executed(built_book, book_artifacts):
    for page in toc_pages():
        html = built_book / f"{page}.html"
        assert html.is_file(), f"{page} was not built"
    # every executed chapter has outputs, and no cell failed
    for page in toc_pages():
        text = (built_book / f"{page}.html").read_text()
        assert "Traceback (most recent call last)" not in text, page
    assert (book_artifacts / "split.csv").is_file()
    assert (book_artifacts / "metrics" / "baseline.json").is_file()


def test_the_book_reused_the_models_it_was_seeded_with(book_artifacts, seed_models):
    """The app tests use the seed's models as "the book's models": true only if the build reused
    them (same split, mode, settings and version) rather than training its own."""
    from blgenre.models import read_meta, registry

    for kind in map(registry.get, registry.names()):
        built = read_meta(book_artifacts / "models" / kind.name)
        seeded = read_meta(seed_models / kind.name)
        assert built["files"][kind.main_file] == seeded["files"][kind.main_file], (
            f"the book build retrained {kind.name}")
        assert built["stamp"] == seeded["stamp"]


def test_no_cdn_scripts(built_book):
    for page in toc_pages():
        text = (built_book / f"{page}.html").read_text()
        external = re.findall(r'<script[^>]+src="(https?://[^"]+)"', text)
        assert not external, f"{page} loads scripts from other hosts: {external}"


def test_launch_buttons_open_the_paired_notebooks(built_book):
    from blgenre.book.notebooks import chapter_sources

    for md in chapter_sources():
        page = md.relative_to(PROJECT_ROOT).with_suffix("").as_posix()
        text = (built_book / f"{page}.html").read_text()
        colab = re.findall(r'href="(https://colab\.research\.google\.com/[^"]+)"', text)
        binder = re.findall(r'href="(https://mybinder\.org/[^"]+)"', text)
        assert colab and binder, f"{page}: no Colab or Binder launch button"
        assert all(u.endswith(f"{page}.ipynb") for u in colab), colab
        assert all(f"{page}.ipynb" in u for u in binder), binder


@pytest.fixture(scope="session")
def server(built_book):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.mark.browser
def test_pages_render_in_chromium(browser, server, built_book, tmp_path, measure):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    failed_requests: list[str] = []
    # a file the server does not have (an error status), or a request that failed for another
    # reason than the test leaving the page before it finished (the demo's WebAssembly)
    page.on("response", lambda r: r.status >= 400 and failed_requests.append(f"{r.status} {r.url}"))
    page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
            and failed_requests.append(f"{r.failure} {r.url}"))
    internal_links: set[str] = set()
    for name in toc_pages():
        url = urljoin(server, f"{name}.html")
        response = page.goto(url, wait_until="load")
        assert response and response.ok, url
        h1 = page.locator("main article h1").first  # (main also holds a print-only h1)
        assert h1.is_visible(), f"{name}: no visible heading"
        assert h1.inner_text().strip()
        broken = page.evaluate("""() => Array.from(document.querySelectorAll('main img'))
            .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.src)""")
        assert not broken, f"{name}: images that did not load: {broken}"
        for href in page.evaluate("() => Array.from(document.querySelectorAll('a[href]'))"
                                  ".map(a => a.href)"):
            if href.startswith(server):
                internal_links.add(href.split("#")[0])
    page.screenshot(path=str(tmp_path / "last_page.png"))
    for link in sorted(internal_links):
        path = urlparse(link).path.lstrip("/") or "index.html"
        target = built_book / path
        assert target.is_file() or (target / "index.html").is_file(), f"broken link: {link}"
    local_failures = [u for u in failed_requests if server in u]
    assert not local_failures, f"requests that failed: {local_failures}"
    measure(f"browser: checked {len(toc_pages())} pages and {len(internal_links)} internal links")

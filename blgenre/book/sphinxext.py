"""A small Sphinx extension: read (and so execute) the chapters in table-of-contents order.

Sphinx reads pages in alphabetical order, and myst-nb executes a notebook when its page is
read. Alphabetically, *Demo apps* would run before *Fine-tuning a transformer* and train the
models itself, and *Execution statistics* would report on a build half done. Reading the pages
in the reader's order means each model is trained once, by its own chapter, and the statistics
page runs last.

It also copies the in-browser demo (models, ONNX Runtime Web, the one-file demo), which the
chapter 'Demo apps' writes to ``artifacts/browser``, into the built book's
``_static/blgenre-demo`` once the HTML is written (:mod:`blgenre.sharing.browser_demo`).
"""

from __future__ import annotations

from pathlib import Path


def toc_order(docnames: list[str], pages: list[str]) -> None:
    """Sort ``docnames`` in place: pages in ``pages`` order first, any others after, by name."""
    rank = {page: i for i, page in enumerate(pages)}
    docnames.sort(key=lambda name: (rank.get(name, len(rank)), name))


def _before_read(app, env, docnames: list[str]) -> None:
    from blgenre.book.notebooks import toc_pages

    toc_order(docnames, toc_pages(Path(app.srcdir)))


def _copy_browser_demo(app, exception) -> None:
    if exception is None and app.builder.format == "html":
        from blgenre.sharing.browser_demo import install_into_book

        install_into_book(app.outdir)


def setup(app):
    app.connect("env-before-read-docs", _before_read)
    app.connect("build-finished", _copy_browser_demo)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

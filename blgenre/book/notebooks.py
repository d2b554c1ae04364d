"""The chapters' paired notebooks: ``python -m blgenre.book.notebooks sync|check``.

Each chapter is written as MyST markdown (``chapters/<name>.md``, reviewed as code) and paired by
jupytext with ``chapters/<name>.ipynb``, an output-free notebook that Colab, Binder and Jupyter
open from the book's launch buttons. ``sync`` regenerates the notebooks from the markdown;
``check`` fails when a pair differs (the tests and the pre-commit hook run it).

Each chapter opens with the same hidden setup cell, generated from one template and the
repository address in ``_config.yml`` (:mod:`blgenre.book.config`): ``sync`` first rewrites that
cell in every chapter (and the other copies of the address), and ``check`` fails when one differs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from blgenre.book import config
from blgenre.paths import PROJECT_ROOT


def toc_pages(root: Path = PROJECT_ROOT) -> list[str]:
    """Every page of the book, in table-of-contents order (``chapters/intro``, ...)."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part["chapters"]]
    return pages


def chapter_sources(root: Path = PROJECT_ROOT) -> list[Path]:
    """The markdown source of every executable page (those with jupytext front matter)."""
    pages = [root / f"{page}.md" for page in toc_pages(root)]
    return [md for md in pages if "\njupytext:" in md.read_text().split("\n---", 1)[0]]


def _cells(nb) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", [])))
            for c in nb.cells]


def expected_notebook(md: Path):
    """The notebook jupytext makes from a chapter's markdown."""
    import jupytext

    return jupytext.read(md)


def url_fixes(root: Path = PROJECT_ROOT) -> dict[Path, str]:
    """Files whose setup cell or copy of the repository address is not current: path -> text.

    Raises ``ValueError`` (naming the chapter) when a chapter has no setup cell to rewrite.
    """
    url = config.repository_url(root)
    wanted = config.url_copies(root)
    for md in chapter_sources(root):
        try:
            wanted[md] = config.with_setup_cell(md.read_text(), url)
        except ValueError as exc:
            raise ValueError(f"{md.relative_to(root)}: {exc}") from None
    return {path: text for path, text in wanted.items() if path.read_text() != text}


def _keep_cell_ids(old, new) -> None:
    """Give each cell of ``new`` the id of an identical cell of ``old`` (in order), if any."""
    ids: dict[tuple, list[str]] = {}
    for key, cell in zip(_cells(old), old.cells, strict=True):
        if "id" in cell:
            ids.setdefault(key, []).append(cell.id)
    for key, cell in zip(_cells(new), new.cells, strict=True):
        if ids.get(key):
            cell.id = ids[key].pop(0)


def sync(root: Path = PROJECT_ROOT) -> list[Path]:
    """Rewrite stale setup cells, then write ``<name>.ipynb`` beside each chapter whose notebook
    is missing or stale.

    Notebooks already in sync are left alone, and a stale one keeps the ids of its unchanged
    cells, so that git diffs show only the cells that changed.
    """
    import jupytext
    import nbformat

    written = []
    for path, text in url_fixes(root).items():
        path.write_text(text)
        written.append(path)
    for md in chapter_sources(root):
        target = md.with_suffix(".ipynb")
        expected = expected_notebook(md)
        if target.is_file():
            old = nbformat.read(target, as_version=4)
            if _cells(old) == _cells(expected):
                continue
            _keep_cell_ids(old, expected)
        jupytext.write(expected, target, fmt="ipynb")
        written.append(target)
    return written


def out_of_sync(root: Path = PROJECT_ROOT) -> list[str]:
    """Chapters whose ``.ipynb`` is missing or differs from their markdown (cells and tags)."""
    import nbformat

    try:
        problems = [f"{path.relative_to(root)}: " + ("setup cell differs from its template"
                    if path.suffix == ".md" else "repository address differs from _config.yml")
                    for path in url_fixes(root)]
    except ValueError as exc:
        problems = [str(exc)]
    for md in chapter_sources(root):
        ipynb = md.with_suffix(".ipynb")
        if not ipynb.is_file():
            problems.append(f"{ipynb.relative_to(root)}: missing")
            continue
        actual = nbformat.read(ipynb, as_version=4)
        if _cells(actual) != _cells(expected_notebook(md)):
            problems.append(f"{ipynb.relative_to(root)}: differs from {md.name}")
        elif any(c.get("outputs") for c in actual.cells if c.cell_type == "code"):
            problems.append(f"{ipynb.relative_to(root)}: has outputs (commit it output-free)")
    return problems


def main(argv: list[str]) -> int:
    if argv == ["sync"]:
        try:
            paths = sync()
        except ValueError as exc:
            print(exc, file=sys.stderr)
            return 2
        for path in paths:
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    if argv == ["check"]:
        problems = out_of_sync()
        for line in problems:
            print(line, file=sys.stderr)
        if problems:
            print("run `python -m blgenre.book.notebooks sync` (or `make notebooks`)", file=sys.stderr)
            return 1
        print(f"{len(chapter_sources())} chapter notebooks in sync")
        return 0
    print("usage: python -m blgenre.book.notebooks sync|check", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The book's repository address, set in one place: ``repository.url`` in ``_config.yml``.

Every chapter opens with the same hidden setup cell (it installs this package from the
repository in Colab or Binder); :func:`setup_cell` is its one template, and
``python -m blgenre.book.notebooks sync`` writes it into each chapter, so that a fork only edits
``_config.yml``. The model cards, the deposit and ``CITATION.cff`` read the address from
:func:`repository_url`. An installed copy of the package (Colab) has no ``_config.yml``: it uses
:data:`REPOSITORY_URL`, which the same ``sync`` keeps equal to ``_config.yml``.
"""

from __future__ import annotations

import re
from pathlib import Path

from blgenre.paths import PROJECT_ROOT

#: The address in ``_config.yml`` when this file was last synced (for installed copies).
REPOSITORY_URL = "https://github.com/blgenre-book/blgenre"

#: The hidden first cell of every chapter; ``{url}`` is the repository address.
SETUP_CELL = '''\
# Setup for Colab, Binder or a fresh Jupyter (hidden in the book): install the book's package
# from its repository when it is missing. Set BLGENRE_WORKSHOP=1 for shorter training.
# Generated from _config.yml by `python -m blgenre.book.notebooks sync` (blgenre/book/config.py).
import importlib.util
import sys

if importlib.util.find_spec("blgenre") is None:
    %pip install --quiet "blgenre @ git+{url}"
if "google.colab" in sys.modules and importlib.util.find_spec("torch"):
    import torch

    if not torch.cuda.is_available():
        print("This Colab runtime has no GPU. That is fine: every chapter runs on a CPU.")'''

#: Other files holding a copy of the address: the line that holds it, and how to write it.
URL_LINES = {
    "blgenre/book/config.py": (r'^REPOSITORY_URL = ".*"$', 'REPOSITORY_URL = "{url}"'),
    "CITATION.cff": (r'^repository-code: ".*"$', 'repository-code: "{url}"'),
}

# A chapter's first code cell: its header and option lines, its body, the closing fence.
_FIRST_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n((?::[^\n]*\n)*)\n?(.*?)\n```$", re.M | re.S)


def repository_url(root: Path = PROJECT_ROOT) -> str:
    """The book's repository address: ``repository.url`` in ``<root>/_config.yml``.

    Without a ``_config.yml`` (an installed copy of the package) it is :data:`REPOSITORY_URL`.
    """
    import yaml

    config = root / "_config.yml"
    if not config.is_file():
        return REPOSITORY_URL
    url = ((yaml.safe_load(config.read_text()) or {}).get("repository") or {}).get("url")
    if not isinstance(url, str) or not re.fullmatch(r"https://[^\s\"']+", url.strip()):
        raise ValueError(f"{config}: repository.url must be an https:// address, got {url!r}")
    return url.strip().rstrip("/")


def setup_cell(url: str | None = None) -> str:
    """The source of the hidden setup cell that opens every chapter."""
    return SETUP_CELL.format(url=url or repository_url())


def with_setup_cell(text: str, url: str) -> str:
    """A chapter's MyST text with its first code cell replaced by :func:`setup_cell`."""
    match = _FIRST_CELL.search(text)
    if match is None or "remove-cell" not in match[1] or not match[2].startswith("# Setup"):
        raise ValueError("its first code cell is not the hidden setup cell (tagged remove-cell, "
                         "opening with '# Setup'); copy it from another chapter")
    return text[:match.start(2)] + setup_cell(url) + text[match.end(2):]


def _with_url_line(text: str, pattern: str, line: str, url: str) -> str:
    return re.sub(pattern, line.format(url=url).replace("\\", r"\\"), text, count=1, flags=re.M)


def url_copies(root: Path = PROJECT_ROOT) -> dict[Path, str]:
    """Every file outside the chapters that holds the address, with the text it should have."""
    url = repository_url(root)
    wanted = {}
    for name, (pattern, line) in URL_LINES.items():
        path = root / name
        if path.is_file():
            wanted[path] = _with_url_line(path.read_text(), pattern, line, url)
    return wanted

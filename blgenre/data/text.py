"""Preparing titles for any model: the same rules for training, the CLI, the API and the app."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

#: Longest title a model sees; the longest catalogue title is far shorter, and anything longer is
#: cut (models truncate to their own token limits anyway).
MAX_TITLE_CHARS = 1000


def clean_title(title: object) -> str:
    """NFC-normalise, drop control characters, collapse whitespace, cut to ``MAX_TITLE_CHARS``."""
    text = "" if title is None else str(title)
    if not (text.isascii() and text.isprintable()):  # fast path: plain ASCII needs neither step
        text = unicodedata.normalize("NFC", text)
        text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip()[:MAX_TITLE_CHARS]


def clean_titles(titles: Iterable[object]) -> list[str]:
    """:func:`clean_title` applied to each title."""
    return [clean_title(t) for t in titles]

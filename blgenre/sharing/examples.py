"""Example titles for the demo app and the Space, read from the model folders (chapter 'A demo').

A model saves a few real titles from the test split in its ``model.json`` (key ``examples``,
chosen by :func:`pick_titles` when it is trained), so the app can show them without the data:
it starts offline, from the model folders alone. A model saved without examples falls back to
:data:`FALLBACK_TITLES`, well-known 19th-century titles.
"""

from __future__ import annotations

from pathlib import Path

from blgenre.data.text import MAX_TITLE_CHARS, clean_title
from blgenre.errors import ModelError

#: Titles of real 19th-century books (three novels, three non-fiction), used when no model
#: folder lists examples of its own.
FALLBACK_TITLES = (
    "Pride and prejudice. A novel",
    "A history of the railways in Scotland",
    "The castle of Otranto, a Gothic story",
    "On the origin of species by means of natural selection",
    "Sketches by Boz, illustrative of every-day life and every-day people",
    "Travels in the interior districts of Africa",
)
#: The key of ``model.json`` that holds a model's example titles.
EXAMPLES_KEY = "examples"


def pick_titles(frame, n: int = 6, seed: int = 0) -> list[str]:
    """A few short titles of a split part (``title`` and ``label`` columns), alternating labels.

    Call it at training time on the test split and save the result in ``model.json``
    (``model.save(folder, examples=pick_titles(test))``).
    """
    short = frame[frame["title"].str.len().between(15, 90)]
    columns = [g.sample(min(len(g), n // 2), random_state=seed)["title"].tolist()
               for _, g in short.groupby("label")]
    picked = [t for pair in zip(*columns, strict=False) for t in pair]
    return picked[:n]


def _usable(title: object) -> str:
    if not isinstance(title, str) or len(title) > MAX_TITLE_CHARS:
        return ""
    return clean_title(title)


def example_titles_for_folder(folder: str | Path) -> list[str]:
    """The example titles saved in a model folder's ``model.json`` ([] if it has none)."""
    from blgenre.models import read_meta

    try:
        listed = read_meta(folder).get(EXAMPLES_KEY)
    except ModelError:
        return []
    if not isinstance(listed, list):
        return []
    return [t for t in map(_usable, listed) if t]


def example_titles(models_root: str | Path | None = None, n: int = 6) -> list[str]:
    """Up to ``n`` example titles from the model folders (in registry order), else the fallback."""
    from blgenre.models import registry
    from blgenre.paths import artifacts_dir

    root = Path(models_root) if models_root else artifacts_dir("models", create=False)
    titles: list[str] = []
    for name in registry.names():
        for title in example_titles_for_folder(root / name):
            if title not in titles:
                titles.append(title)
    return (titles or list(FALLBACK_TITLES))[:n]

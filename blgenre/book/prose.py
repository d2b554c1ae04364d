"""Helpers for chapters: gluing values into the prose."""

from __future__ import annotations

import numpy as np


def plain(value):
    """NumPy scalars as Python numbers, so that glued text formats (``{glue:text}`k:.3f` ``) work."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def glue(name: str, value, display: bool = False):
    """:func:`myst_nb.glue` with NumPy scalars converted and, by default, nothing displayed."""
    from myst_nb import glue as _glue

    return _glue(name, plain(value), display=display)

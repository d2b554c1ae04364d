"""The prose of the sharing chapters lives in Jinja2 templates; this module fills them.

Chapters *Model cards*, *Sharing data and keeping it safe*, *Sharing models* and *Demo apps*:
the model cards, the dataset card, the datasheet, the deposit's usage notes and the Space README
are written in ``blgenre/sharing/templates/``, so that library staff can change their wording
without touching Python. The code only gathers the facts (from
``artifacts/metrics/<model>.json``, ``model.json`` and the data facts JSON) and hands them to a
template.

Per-kind wording is a *fragment* chosen by the kind's name, for example
``templates/pretraining/<kind>.md.j2``; a kind with no fragment of its own gets
``_default.md.j2`` from the same folder. There is no list of kinds here: a new kind needs its
record in :mod:`blgenre.models.registry` and, optionally, its fragments.

Templates are rendered with *strict* undefined names: a misspelt ``{{ metrics.macro_f11 }}``
stops with a one-line error naming the template, instead of leaving a silent blank in a card.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from blgenre.errors import BLGenreError

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: Used for a kind that has no fragment of its own in a fragment folder.
DEFAULT_FRAGMENT = "_default"
SUFFIX = ".md.j2"


class TemplateError(BLGenreError):
    """A template is missing, malformed or uses a name it is not given."""


def template_path(name: str) -> Path:
    """The template ``name`` (relative to the templates folder), which must exist."""
    path = TEMPLATES / name
    if not path.is_file():
        raise TemplateError(f"no template {name!r} in {TEMPLATES}; was the package installed "
                            "without its templates folder?")
    return path


def _environment():
    import jinja2

    # huggingface_hub's ``from_template`` uses a plain ``jinja2.Template``: the same whitespace
    # rules as here, so a template reads the same whichever renders it. Only undefined names
    # (an error here, a blank there) and the final newline (kept here) differ.
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                              autoescape=False)


def render(name: str, /, **context) -> str:
    """Template ``name`` filled with ``context``; a clear error for an unknown name or bad syntax."""
    import jinja2

    path = template_path(name)
    try:
        return _environment().from_string(path.read_text(encoding="utf-8")).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{name}, line {exc.lineno}: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{name}: {exc.message} (the names it is given: "
                            f"{', '.join(sorted(context))})") from None


def fragment_name(folder: str, kind: str) -> str:
    """``<folder>/<kind>.md.j2`` if the kind has its own fragment there, else the folder's default."""
    own = f"{folder}/{kind}{SUFFIX}"
    return own if (TEMPLATES / own).is_file() else f"{folder}/{DEFAULT_FRAGMENT}{SUFFIX}"


def fragment(folder: str, kind: str, /, **context) -> str:
    """The kind's fragment from ``folder``, rendered, without surrounding blank space."""
    return render(fragment_name(folder, kind), **context).strip()


def template_names() -> list[str]:
    """Every template in the folder (fragments included), relative to it, sorted."""
    return sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.j2"))


def deposit_usage(names: Sequence[str]) -> str:
    """``USAGE.md`` of the deposit that packages the models ``names`` (from ``deposit_usage.md.j2``)."""
    from blgenre.book.config import repository_url
    from blgenre.data import BL_DOI
    from blgenre.models import registry

    kinds = [registry.get(n) for n in names]
    return render("deposit_usage.md.j2", kinds=kinds, doi=BL_DOI, book_url=repository_url(),
                  pickled=[k for k in kinds if k.pickled])

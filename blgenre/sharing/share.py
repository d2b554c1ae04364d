"""Sharing the book's models and data in one call, and the names the chapters use.

The work is done in three modules, each re-exported here so that chapters can write
``from blgenre.sharing import share; share.hub_folders()``:

- :mod:`blgenre.sharing.hub`: Hub folders (:func:`hub_folder`) and :func:`publish`;
- :mod:`blgenre.sharing.deposit`: the repository :func:`deposit` and ``CITATION.cff``;
- :mod:`blgenre.sharing.lockss`: BagIt bags in several copies, :func:`verify` and
  :func:`repair_copies`.

:func:`share_all` (chapter 'Sharing data') makes all of them for whatever models exist.
"""

from __future__ import annotations

from blgenre.paths import artifacts_dir
from blgenre.sharing.deposit import (  # noqa: F401
    CREATORS,
    KEYWORDS,
    citation_cff,
    deposit,
    usage_text,
    validate_citation,
    write_root_citation,
    zenodo_metadata,
)
from blgenre.sharing.hub import (  # noqa: F401
    HASH_LIMITS,
    HUB_HOST,
    PublishError,
    fastai_pyproject,
    hub_folder,
    hub_folders,
    hub_reachable,
    publish,
    resolve_token,
    usage_snippet_of,
)
from blgenre.sharing.lockss import (  # noqa: F401
    N_COPIES,
    FixityError,
    Problem,
    default_copies,
    find_bags,
    lockss_copies,
    make_bag,
    repair,
    repair_copies,
    verify,
    verify_bag,
    verify_root,
)


def share_all(names=None, copies: int = N_COPIES) -> dict:
    """Hub folders, deposit, data documentation and LOCKSS copies of whatever models exist."""
    from pathlib import Path

    from blgenre.sharing.cards import write_cards

    hub = hub_folders(names)
    dep = deposit([n for n, v in hub.items() if isinstance(v, Path)])
    docs = write_cards(artifacts_dir("data_docs"))
    lockss = lockss_copies(n=copies)
    return {"hub": hub, "deposit": dep, "data_docs": docs, "lockss": lockss}

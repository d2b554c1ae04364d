"""A repository deposit of the models (chapter 'Sharing models').

:func:`deposit` writes ``artifacts/deposit/``: a zip archive of every model's Hub folder with
its card, checksums and usage instructions, ``.zenodo.json`` metadata and the book's
``CITATION.cff`` (validated with ``cffconvert``), ready to upload to Zenodo or an institutional
repository, which gives the models a DOI.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

from blgenre import __version__
from blgenre.book.config import repository_url
from blgenre.data import BL_DOI
from blgenre.errors import ModelError
from blgenre.integrity import sha256_file
from blgenre.models import registry
from blgenre.paths import PROJECT_ROOT, artifacts_dir
from blgenre.sharing.cards import BOOK_TITLE
from blgenre.sharing.hub import hub_folder

KEYWORDS = ["British Library", "genre classification", "19th-century books", "GLAM",
            "digitised collections", "crowdsourcing", "machine learning", "model card"]
CREATORS = [{"name": "The blgenre book contributors"}]


def citation_cff() -> str:
    """``CITATION.cff`` for the book (Citation File Format 1.2.0)."""
    return f"""cff-version: 1.2.0
message: "If you use this book, its code or its models, please cite it as below."
type: software
title: "{BOOK_TITLE}"
version: "{__version__}"
authors:
  - name: "The blgenre book contributors"
license: CC0-1.0
repository-code: "{repository_url()}"
keywords:
{''.join(f'  - "{k}"' + chr(10) for k in KEYWORDS)}references:
  - type: data
    title: "19th Century Books - metadata with additional crowdsourced annotations"
    authors:
      - name: "British Library"
    year: 2021
    license: CC0-1.0
    doi: "{BL_DOI}"
"""


def validate_citation(path: str | Path) -> None:
    """Raise ``ValueError`` (with cffconvert's reason) if ``path`` is not a valid CITATION.cff."""
    from cffconvert import Citation

    try:
        Citation(Path(path).read_text()).validate()
    except Exception as exc:  # noqa: BLE001 - jsonschema / YAML errors, reported as one
        raise ValueError(f"{path}: invalid CITATION.cff: {str(exc).splitlines()[0]}") from None


def zenodo_metadata(models: list[str]) -> dict:
    """``.zenodo.json`` for the deposit: the models are derived from the British Library data."""
    return {
        "title": f"{BOOK_TITLE}: trained models ({', '.join(models)})",
        "upload_type": "software",
        "version": __version__,
        "license": "cc-zero",
        "creators": CREATORS,
        "description": ("Genre classifiers (Fiction / Non-fiction) for titles of 19th-century "
                        "books digitised by the British Library, with model cards, usage "
                        "instructions and sha256 checksums. Trained and documented in an open, "
                        f"executable book ({repository_url()})."),
        "keywords": KEYWORDS,
        "access_right": "open",
        "related_identifiers": [
            {"identifier": BL_DOI, "relation": "isDerivedFrom", "scheme": "doi",
             "resource_type": "dataset"},
            {"identifier": repository_url(), "relation": "isSupplementTo", "scheme": "url",
             "resource_type": "publication-book"},
        ],
    }


#: The earliest time a zip file can record (1980-01-01), used when SOURCE_DATE_EPOCH is unset.
ZIP_EPOCH = 315532800


def add_to_zip(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    """Add ``data`` as ``name`` with a fixed time stamp and mode, so that two builds of the same
    files give the same archive, byte for byte (``SOURCE_DATE_EPOCH`` sets the time)."""
    epoch = max(int(os.environ.get("SOURCE_DATE_EPOCH", ZIP_EPOCH)), ZIP_EPOCH)
    info = zipfile.ZipInfo(name, date_time=time.gmtime(epoch)[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def usage_text(names) -> str:
    """``USAGE.md`` of a deposit packaging the models ``names`` (template ``deposit_usage.md.j2``)."""
    from blgenre.sharing.templating import deposit_usage

    return deposit_usage(names)


def deposit(names=None, out: str | Path | None = None) -> dict:
    """Write ``artifacts/deposit/``: a zip of every Hub folder, ``.zenodo.json`` and CITATION.cff.

    Models without a Hub folder are built first; models that do not exist are skipped and
    listed under ``'skipped'``.
    """
    out = Path(out) if out else artifacts_dir("deposit")
    out.mkdir(parents=True, exist_ok=True)
    packaged, skipped = [], {}
    for name in registry.names() if names is None else names:
        folder = artifacts_dir("hub", create=False) / name
        if not (folder / "README.md").is_file():
            try:
                folder = hub_folder(name)
            except ModelError as exc:
                skipped[name] = str(exc)
                continue
        packaged.append((name, folder))
    archive = out / f"blgenre-models-{__version__}.zip"
    usage = usage_text([n for n, _ in packaged])
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        add_to_zip(zf, "USAGE.md", usage.encode())
        add_to_zip(zf, "CITATION.cff", citation_cff().encode())
        for name, folder in packaged:
            sums = []
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                rel = path.relative_to(folder).as_posix()
                add_to_zip(zf, f"{name}/{rel}", path.read_bytes())
                sums.append(f"{sha256_file(path)}  {rel}\n")
            add_to_zip(zf, f"{name}/SHA256SUMS", "".join(sums).encode())
        demo = artifacts_dir("demo", create=False) / "blgenre-demo.html"
        if demo.is_file():  # the one-file offline demo (chapter 'Demo apps'), if it was built
            add_to_zip(zf, "blgenre-demo.html", demo.read_bytes())
    (out / ".zenodo.json").write_text(json.dumps(zenodo_metadata([n for n, _ in packaged]),
                                                 indent=2))
    (out / "CITATION.cff").write_text(citation_cff())
    validate_citation(out / "CITATION.cff")
    (out / "USAGE.md").write_text(usage)
    return {"folder": out, "archive": archive, "packaged": [n for n, _ in packaged],
            "skipped": skipped}


def write_root_citation(path: str | Path = PROJECT_ROOT / "CITATION.cff") -> Path:
    """Write the book's ``CITATION.cff`` at the repository root (and validate it)."""
    path = Path(path)
    path.write_text(citation_cff())
    validate_citation(path)
    return path

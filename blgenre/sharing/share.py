"""Sharing the book's models: Hub folders, publishing, a repository deposit and LOCKSS copies.

- :func:`hub_folder` writes ``artifacts/hub/<model>/``, a folder laid out as a Hugging Face Hub
  model repository (model files, ``model.json`` with their sha256, a ``README.md`` model card).
- :func:`publish` uploads such a folder with :meth:`huggingface_hub.HfApi.upload_folder`. It
  fails at once, with a message meant for a reader, when there is no token or no network.
- :func:`deposit` writes ``artifacts/deposit/``: an archive of each model with its card and
  usage instructions, ``.zenodo.json`` metadata and the book's ``CITATION.cff``.
- :func:`lockss_copies` writes everything above as BagIt bags (sha256 manifests) in several
  independent copies; :func:`verify` names any file that is missing or altered and
  :func:`repair` restores it from a copy that verifies.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from blgenre import __version__
from blgenre.data import BL_DOI
from blgenre.errors import BLGenreError, ModelError
from blgenre.integrity import sha256_file, verify_sha256
from blgenre.models import META_FILE, missing_model_message, read_meta
from blgenre.paths import PROJECT_ROOT, artifacts_dir, model_dir
from blgenre.sharing.cards import BOOK_TITLE, BOOK_URL, MODELS, model_card, snippet_from_card, write_cards

HUB_HOST = "huggingface.co"
N_COPIES = 3
KEYWORDS = ["British Library", "genre classification", "19th-century books", "GLAM",
            "digitised collections", "crowdsourcing", "machine learning", "model card"]
CREATORS = [{"name": "The blgenre book contributors"}]


class PublishError(BLGenreError):
    """A Hub folder cannot be published (no token, offline, or the Hub refused it)."""


# --------------------------------------------------------------------------- Hub folders
def _copy_verified(src: Path, dst: Path, digest: str) -> None:
    verify_sha256(src, digest)
    shutil.copy2(src, dst)
    os.chmod(dst, 0o644)


def fastai_pyproject(meta: dict) -> str:
    """``pyproject.toml`` in the layout of huggingface_hub's fastai integration."""
    versions = meta.get("versions", {})
    try:
        fastcore = metadata.version("fastcore")
    except metadata.PackageNotFoundError:
        fastcore = ""
    fastai = versions.get("fastai", "")
    python = meta.get("python", versions.get("python", ""))
    torch = versions.get("torch", "").split("+")[0]
    return ("[build-system]\n"
            f'requires = ["setuptools>=40.8.0", "wheel", "python={python}", "fastai={fastai}", '
            f'"fastcore={fastcore}", "torch={torch}"]\n'
            'build-backend = "setuptools.build_meta:__legacy__"\n')


def hub_folder(name: str, out: str | Path | None = None, repo_id: str | None = None) -> Path:
    """Write the Hub-ready folder of model ``name``; raise :class:`ModelError` if it is missing."""
    src = model_dir(name)
    if not (src / META_FILE).is_file():
        raise ModelError(missing_model_message(name if name in MODELS else "baseline", src))
    meta = read_meta(src)
    card = model_card(name, src, repo_id=repo_id)  # fails early if there are no metrics
    out = Path(out) if out else artifacts_dir("hub") / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for fname, digest in meta["files"].items():  # only hashed files; each checked as it is copied
        _copy_verified(src / fname, out / fname, digest)
    shutil.copy2(src / META_FILE, out / META_FILE)
    if meta["kind"] == "fastai":
        (out / "pyproject.toml").write_text(fastai_pyproject(meta))
    card.save(out / "README.md")
    return out


def hub_folders(names=MODELS, repo_prefix: str | None = None) -> dict[str, Path | str]:
    """Hub folders of every model that exists; for a missing one, why it was skipped."""
    done: dict[str, Path | str] = {}
    for name in names:
        try:
            repo = f"{repo_prefix}/blgenre-{name}" if repo_prefix else None
            done[name] = hub_folder(name, repo_id=repo)
        except ModelError as exc:
            done[name] = f"skipped: {exc}"
    return done


def usage_snippet_of(folder: str | Path) -> str:
    """The usage snippet in a Hub folder's ``README.md``."""
    return snippet_from_card((Path(folder) / "README.md").read_text())


# --------------------------------------------------------------------------- publishing
def _truthy(value: str | None) -> bool:
    return str(value or "").strip().lower() in {"1", "true", "yes", "on"}


def hub_reachable(host: str = HUB_HOST, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the Hub opens within ``timeout`` seconds."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def publish(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False,
            message: str | None = None) -> str:
    """Upload a Hub folder to ``repo_id`` and return the repository URL.

    The token comes from ``token`` or the ``HF_TOKEN`` environment variable; it is passed to
    the Hub client only, never printed, logged or written to a file.
    """
    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise PublishError(f"{folder}: not a Hub folder (no README.md); create it with "
                           "blgenre.sharing.share.hub_folder first")
    if not repo_id or repo_id.count("/") != 1:
        raise PublishError(f"repo id {repo_id!r}: expected 'user-or-organisation/name'")
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise PublishError("no Hugging Face token: pass --token or set HF_TOKEN (create a token "
                           "with write access at https://huggingface.co/settings/tokens)")
    if _truthy(os.environ.get("HF_HUB_OFFLINE")):
        raise PublishError("HF_HUB_OFFLINE is set, so nothing can be uploaded; unset it on a "
                           "machine with internet access and run publish again")
    if not hub_reachable():
        raise PublishError(f"cannot reach {HUB_HOST} (no network?); nothing was uploaded")
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                 commit_message=message or f"blgenre {__version__}: {folder.name}")
    except Exception as exc:  # noqa: BLE001 - report any Hub failure in one line, token-free
        text = str(exc).replace(token, "***").splitlines()[0] if str(exc) else ""
        raise PublishError(f"upload to {repo_id} failed: {type(exc).__name__}: {text}") from None
    return str(getattr(info, "repo_url", f"https://huggingface.co/{repo_id}"))


# --------------------------------------------------------------------------- deposit
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
repository-code: "{BOOK_URL}"
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
                        f"executable book ({BOOK_URL})."),
        "keywords": KEYWORDS,
        "access_right": "open",
        "related_identifiers": [
            {"identifier": BL_DOI, "relation": "isDerivedFrom", "scheme": "doi",
             "resource_type": "dataset"},
            {"identifier": BOOK_URL, "relation": "isSupplementTo", "scheme": "url",
             "resource_type": "publication-book"},
        ],
    }


USAGE = """# Using these models

Each folder in this archive is one model, laid out like a Hugging Face Hub repository:

- `README.md`: the model card (intended uses, test results by language and decade, caveats)
  with a usage snippet; run the snippet with the model's folder as working directory.
- `model.json`: how the model was trained, software versions and the sha256 of each file.
  Check the sha256 before loading a pickled model (`.joblib`, `.pkl`): loading a pickle runs code.
- `SHA256SUMS`: checksums of every file; verify with `sha256sum -c SHA256SUMS` inside the folder.

Data: British Library, 19th Century Books - metadata with additional crowdsourced annotations,
https://doi.org/{doi} (CC0). Book and code: {url}
"""


def deposit(names=MODELS, out: str | Path | None = None) -> dict:
    """Write ``artifacts/deposit/``: a zip of every Hub folder, ``.zenodo.json`` and CITATION.cff.

    Models without a Hub folder are built first; models that do not exist are skipped and
    listed under ``'skipped'``.
    """
    out = Path(out) if out else artifacts_dir("deposit")
    out.mkdir(parents=True, exist_ok=True)
    packaged, skipped = [], {}
    for name in names:
        folder = artifacts_dir("hub", create=False) / name
        if not (folder / "README.md").is_file():
            try:
                folder = hub_folder(name)
            except ModelError as exc:
                skipped[name] = str(exc)
                continue
        packaged.append((name, folder))
    archive = out / f"blgenre-models-{__version__}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("USAGE.md", USAGE.format(doi=BL_DOI, url=BOOK_URL))
        zf.writestr("CITATION.cff", citation_cff())
        for name, folder in packaged:
            sums = []
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                rel = path.relative_to(folder).as_posix()
                zf.write(path, f"{name}/{rel}")
                sums.append(f"{sha256_file(path)}  {rel}\n")
            zf.writestr(f"{name}/SHA256SUMS", "".join(sums))
    (out / ".zenodo.json").write_text(json.dumps(zenodo_metadata([n for n, _ in packaged]),
                                                 indent=2))
    (out / "CITATION.cff").write_text(citation_cff())
    validate_citation(out / "CITATION.cff")
    (out / "USAGE.md").write_text(USAGE.format(doi=BL_DOI, url=BOOK_URL))
    return {"folder": out, "archive": archive, "packaged": [n for n, _ in packaged],
            "skipped": skipped}


# --------------------------------------------------------------------------- LOCKSS / BagIt
def make_bag(src: str | Path, dst: str | Path, description: str) -> Path:
    """Copy ``src`` (a folder or a file) to ``dst`` and turn ``dst`` into a BagIt bag (sha256)."""
    import bagit

    src, dst = Path(src), Path(dst)
    if dst.exists():
        shutil.rmtree(dst)
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        dst.mkdir(parents=True)
        shutil.copy2(src, dst / src.name)
    bagit.make_bag(str(dst), {
        "Source-Organization": "The blgenre book contributors",
        "External-Description": description,
        "External-Identifier": f"blgenre-{__version__}-{dst.name}",
    }, checksums=["sha256"])
    return dst


def lockss_copies(sources: dict[str, Path] | None = None, n: int = N_COPIES,
                  root: str | Path | None = None) -> list[Path]:
    """Bag every source once in ``copy-1``, then copy the bags to ``copy-2`` .. ``copy-n``.

    ``sources`` maps a bag name to a folder or file; by default every Hub folder, the deposit
    and the data documentation. Returns the copy folders.
    """
    root = Path(root) if root else artifacts_dir("lockss")
    if sources is None:
        sources = {f"hub-{p.name}": p for p in sorted(artifacts_dir("hub").iterdir()) if p.is_dir()}
        sources["deposit"] = artifacts_dir("deposit")
        if (artifacts_dir("data_docs") / "README.md").is_file():
            sources["data-docs"] = artifacts_dir("data_docs")
    first = root / "copy-1"
    if first.exists():
        shutil.rmtree(first)
    for name, src in sources.items():
        make_bag(src, first / name, f"{BOOK_TITLE}: {name}")
    copies = [first]
    for i in range(2, n + 1):
        dst = root / f"copy-{i}"
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(first, dst)
        copies.append(dst)
    return copies


@dataclass
class Problem:
    """One file of one bag that failed its fixity check."""

    bag: str
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.bag}: {self.file}: {self.problem}"


def find_bags(path: str | Path) -> list[Path]:
    """``path`` if it is a bag, else every bag below it."""
    path = Path(path)
    if (path / "bagit.txt").is_file():
        return [path]
    return sorted(p.parent for p in path.rglob("bagit.txt"))


def verify_bag(path: str | Path) -> list[Problem]:
    """Every missing, altered or unexpected file of one bag (empty list: the bag is intact).

    Every file in the bag's manifests (payload and tag files) is re-hashed, so each damaged file
    is named, where ``bagit``'s own ``validate`` stops at the first failed summary check.
    """
    import bagit

    path = Path(path)
    try:
        bag = bagit.Bag(str(path))
    except bagit.BagError as exc:
        return [Problem(str(path), "-", f"not a readable bag: {exc}")]
    problems = []
    for rel, hashes in sorted(bag.entries.items()):
        file = path / rel
        expected = hashes.get("sha256")
        if not file.is_file():
            problems.append(Problem(str(path), rel, "missing"))
        elif expected and (found := sha256_file(file)) != expected:
            problems.append(Problem(str(path), rel, f"altered (sha256 {found[:12]}..., "
                                                    f"expected {expected[:12]}...)"))
    for rel in bag.payload_files():
        if rel not in bag.entries:
            problems.append(Problem(str(path), rel, "not in the manifest"))
    return problems


def default_copies() -> list[Path]:
    root = artifacts_dir("lockss", create=False)
    return sorted(root.glob("copy-*")) if root.is_dir() else []


def verify(paths=None) -> dict[str, list[Problem]]:
    """Verify every bag under each path (default: every LOCKSS copy): ``{bag: problems}``."""
    paths = [Path(p) for p in (paths or default_copies())]
    if not paths:
        raise BLGenreError("nothing to verify: no LOCKSS copies under artifacts/lockss "
                           "(run blgenre.sharing.share.lockss_copies first) and no path given")
    report: dict[str, list[Problem]] = {}
    for path in paths:
        bags = find_bags(path) if path.exists() else []
        if not bags:
            report[str(path)] = [Problem(str(path), "-", "no BagIt bag here (missing copy?)")]
        for bag in bags:
            report[str(bag)] = verify_bag(bag)
    return report


def repair(bad: str | Path, good: str | Path) -> list[str]:
    """Restore the damaged files of bag ``bad`` from bag ``good`` (which must verify first)."""
    bad, good = Path(bad), Path(good)
    if verify_bag(good):
        raise BLGenreError(f"{good}: this copy fails its own check; choose another good copy")
    fixed = []
    for problem in verify_bag(bad):
        rel = problem.file
        if problem.problem == "not in the manifest":
            (bad / rel).unlink(missing_ok=True)
        elif (good / rel).is_file():
            (bad / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(good / rel, bad / rel)
        else:
            continue
        fixed.append(rel)
    if verify_bag(bad):
        raise BLGenreError(f"{bad}: still fails after repair; replace the whole copy from {good}")
    return fixed


# --------------------------------------------------------------------------- everything
def share_all(names=MODELS, copies: int = N_COPIES) -> dict:
    """Hub folders, deposit, data documentation and LOCKSS copies of whatever models exist."""
    hub = hub_folders(names)
    dep = deposit([n for n, v in hub.items() if isinstance(v, Path)])
    docs = write_cards(artifacts_dir("data_docs"))
    lockss = lockss_copies(n=copies)
    return {"hub": hub, "deposit": dep, "data_docs": docs, "lockss": lockss}


def write_root_citation(path: str | Path = PROJECT_ROOT / "CITATION.cff") -> Path:
    """Write the book's ``CITATION.cff`` at the repository root (and validate it)."""
    path = Path(path)
    path.write_text(citation_cff())
    validate_citation(path)
    return path

"""Hub folders and publishing them (chapter 'Sharing models').

- :func:`hub_folder` writes ``artifacts/hub/<model>/``, a folder laid out as a Hugging Face Hub
  model repository: the model's hashed files, its ``model.json``, a ``README.md`` model card,
  and whatever the kind's Hub integration expects (:attr:`Kind.hub_files`).
- :func:`publish` uploads such a folder with :meth:`huggingface_hub.HfApi.upload_folder`. It
  fails at once, with a message meant for a reader, when there is no token or no network. The
  token comes from ``HF_TOKEN``, the token saved by ``hf auth login``, or a hidden prompt; a
  token on the command line is accepted with a warning, since other users of the machine can
  read it in the process list.

Every kind is handled the same way: what differs between kinds is read from
:mod:`blgenre.models.registry`.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import sys
from importlib import metadata
from pathlib import Path

from blgenre import __version__
from blgenre.errors import BLGenreError, ModelError
from blgenre.integrity import verify_sha256
from blgenre.models import META_FILE, read_meta, registry
from blgenre.paths import artifacts_dir, model_dir
from blgenre.runinfo import stable

HUB_HOST = "huggingface.co"
#: What the sha256 in ``model.json`` does and does not protect against (for cards and chapters).
HASH_LIMITS = (
    "The sha256 in model.json protects against corruption and against a model file replaced on "
    "its own, not against someone who can change both files: load a pickled model (fastai's "
    "model.pkl) only from a source you trust, and prefer formats that cannot run code when "
    "loaded (skops for scikit-learn, safetensors, ONNX)."
)
#: The one-line warning ``publish --token`` prints.
TOKEN_ARG_WARNING = ("warning: a token given with --token is visible to other users of this "
                     "machine (process list, shell history); set HF_TOKEN or let publish ask "
                     "for it instead")


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


def fastai_hub_files(meta: dict) -> dict[str, str]:
    """Extra Hub files of a fastai model (named in its :class:`~blgenre.models.registry.Kind`)."""
    return {"pyproject.toml": fastai_pyproject(meta)}


def hub_folder(name: str, out: str | Path | None = None, repo_id: str | None = None) -> Path:
    """Write the Hub-ready folder of model ``name``; raise :class:`ModelError` if it is missing."""
    from blgenre.sharing.cards import model_card

    kind = registry.get(name)
    src = model_dir(name)
    if not (src / META_FILE).is_file():
        raise ModelError(kind.missing_message(src))
    meta = read_meta(src)
    if meta["kind"] != name:
        raise ModelError(f"{src}: holds a {meta['kind']!r} model, not a {name!r} model")
    card = model_card(name, src, repo_id=repo_id)  # fails early if there are no metrics
    out = Path(out) if out else artifacts_dir("hub") / name
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for fname, digest in meta["files"].items():  # only hashed files; each checked as it is copied
        if Path(fname).name != fname:
            raise ModelError(f"{src / META_FILE}: file name {fname!r} leaves the folder")
        _copy_verified(src / fname, out / fname, digest)
    from blgenre.models.onnx_export import export_files
    from blgenre.models.transformer_student import student_files

    # the ONNX exports (the Hub shows them), and the transformer's student (its --fast)
    for rel, digest in {**export_files(meta), **student_files(meta)}.items():
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            raise ModelError(f"{src / META_FILE}: ONNX file {rel!r} leaves the folder")
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        _copy_verified(src / rel, out / rel, digest)
    # without this build's durations and machine: the same bytes from every build of the commit
    (out / META_FILE).write_text(json.dumps(stable(meta), indent=2, default=str))
    for fname, text in kind.extra_hub_files(meta).items():
        (out / fname).write_text(text)
    card.save(out / "README.md")
    return out


def hub_folders(names=None, repo_prefix: str | None = None) -> dict[str, Path | str]:
    """Hub folders of every model that exists; for a missing one, why it was skipped."""
    done: dict[str, Path | str] = {}
    for name in registry.names() if names is None else names:
        try:
            repo = f"{repo_prefix}/blgenre-{name}" if repo_prefix else None
            done[name] = hub_folder(name, repo_id=repo)
        except ModelError as exc:
            done[name] = f"skipped: {exc}"
    return done


def usage_snippet_of(folder: str | Path) -> str:
    """The usage snippet in a Hub folder's ``README.md``."""
    from blgenre.sharing.cards import snippet_from_card

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


def _stored_token() -> str | None:
    """The token ``hf auth login`` saved on this machine, if any."""
    try:
        from huggingface_hub import get_token
    except ImportError:
        return None
    return get_token()


def resolve_token(token: str | None = None, prompt: bool | None = None) -> str:
    """The token to upload with: ``token``, ``HF_TOKEN``, the saved login, or a hidden prompt.

    ``prompt`` (default: when standard input is a terminal) asks with :func:`getpass.getpass`,
    so the token never appears in the process list or the shell history.
    """
    token = token or os.environ.get("HF_TOKEN") or _stored_token()
    if not token and (sys.stdin.isatty() if prompt is None else prompt):
        try:
            token = getpass.getpass("Hugging Face token with write access (input hidden): ")
        except (EOFError, KeyboardInterrupt):
            token = ""
    if not token or not token.strip():
        raise PublishError("no Hugging Face token: set HF_TOKEN (or log in with `hf auth login`); "
                           "create a token with write access at "
                           "https://huggingface.co/settings/tokens")
    return token.strip()


def _check_folder(folder: Path, repo_id: str) -> None:
    if not folder.is_dir():
        raise PublishError(f"{folder}: no such folder; create it with "
                           "blgenre.sharing.share.hub_folder first")
    if not (folder / "README.md").is_file():
        raise PublishError(f"{folder}: not a Hub folder (no README.md); create it with "
                           "blgenre.sharing.share.hub_folder first")
    if not (folder / META_FILE).is_file():
        raise PublishError(f"{folder}: not a Hub folder (no {META_FILE}); create it with "
                           "blgenre.sharing.share.hub_folder first")
    parts = (repo_id or "").split("/")
    if len(parts) != 2 or not all(p.strip() for p in parts) or any(" " in p for p in parts):
        raise PublishError(f"repo id {repo_id!r}: expected 'user-or-organisation/name'")


def publish(folder: str | Path, repo_id: str, token: str | None = None, private: bool = False,
            message: str | None = None, prompt: bool | None = None) -> str:
    """Upload a Hub folder to ``repo_id`` and return the repository URL.

    The token (see :func:`resolve_token`) is passed to the Hub client only, never printed,
    logged or written to a file; the files' hashes are checked before anything is uploaded.
    """
    folder = Path(folder)
    _check_folder(folder, repo_id)
    try:
        meta = read_meta(folder)
        for fname, digest in meta.get("files", {}).items():
            verify_sha256(folder / fname, digest)
    except ModelError as exc:
        raise PublishError(f"{folder}: will not upload a damaged folder ({exc})") from None
    token = resolve_token(token, prompt)
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

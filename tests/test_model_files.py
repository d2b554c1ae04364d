"""Model folders as an attacker or a broken disk leaves them: refused in one line, no code run.

A pickle runs code when it is loaded, so a fastai folder must list ``model.pkl`` with its sha256
in ``model.json`` before anything is unpickled; a damaged ``model.json`` or a corrupt pickle
whose hash matches gives a one-line :class:`ModelError`, in Python, in the app and on the CLI.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import pytest

from blgenre.errors import ModelError
from blgenre.integrity import sha256_file
from blgenre.models import load_model, registry
from blgenre.sharing.app import load_available
from blgenre.sharing.hub import HASH_LIMITS


class Payload:
    """Unpickling this runs ``exec``: it writes a marker file (the 'attack')."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


def fastai_folder(root, files: dict | None, pickle_bytes: bytes):
    folder = root / "fastai"
    folder.mkdir(parents=True)
    (folder / "model.pkl").write_bytes(pickle_bytes)
    if files is None:  # list the pickle with its real hash
        files = {"model.pkl": sha256_file(folder / "model.pkl")}
    (folder / "model.json").write_text(json.dumps({"kind": "fastai", "labels": ["Fiction",
                                                   "Non-fiction"], "files": files}))
    return folder


def one_line_error(folder) -> str:
    with pytest.raises(ModelError) as info:
        load_model(folder)
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_the_registry_names_the_pickled_main_file():
    fastai = registry.get("fastai")
    assert fastai.pickled and fastai.main_file == "model.pkl"
    assert not registry.get("baseline").pickled  # skops, no pickle


@pytest.mark.parametrize("files", [{}, {"history.json": "0" * 64}],
                         ids=["files-empty", "pickle-not-listed"])
def test_unlisted_pickle_is_refused_without_running_it(tmp_path, files):
    marker = tmp_path / "pwned"
    folder = fastai_folder(tmp_path / "models", files, pickle.dumps(Payload(marker)))
    if "history.json" in files:
        (folder / "history.json").write_text("{}")
        files["history.json"] = sha256_file(folder / "history.json")
        meta = json.loads((folder / "model.json").read_text())
        (folder / "model.json").write_text(json.dumps({**meta, "files": files}))
    message = one_line_error(folder)
    assert "does not list model.pkl" in message
    models, missing = load_available(tmp_path / "models")
    assert models == {} and "does not list model.pkl" in missing["fastai"]
    assert not marker.exists(), "the pickle's code ran"


def test_replaced_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    folder = fastai_folder(tmp_path / "models", {"model.pkl": "0" * 64},
                           pickle.dumps(Payload(marker)))
    assert "was altered or replaced" in one_line_error(folder)
    assert not marker.exists()


def test_corrupt_pickle_with_matching_hash_is_one_line(tmp_path):
    whole = pickle.dumps({"weights": list(range(2000))})
    folder = fastai_folder(tmp_path / "models", None, whole[: len(whole) // 2])
    message = one_line_error(folder)
    assert "cannot be loaded as a fastai model" in message


@pytest.mark.parametrize("content, expect", [
    (b"[]", "expected a JSON object"),
    (b"\xff\xfe\x00k\x00i\x00n\x00d", "not a text file"),
    (b'{"kind": "word2vec", "files": {}}', "unknown model kind 'word2vec'"),
    (b'{"kind": "baseline", "files": []}', "'files' must map"),
    (b'{"kind": "baseline", "files": {"../../etc/passwd": "00"}}', "leaves the folder"),
    (b"{not json", "not valid JSON"),
], ids=["list", "not-utf8", "unknown-kind", "files-list", "path-escape", "bad-json"])
def test_damaged_model_json_is_one_line(tmp_path, content, expect):
    folder = tmp_path / "models" / "baseline"
    folder.mkdir(parents=True)
    (folder / "model.json").write_bytes(content)
    assert expect in one_line_error(folder)
    _, missing = load_available(tmp_path / "models")
    assert expect in missing["baseline"] and "\n" not in missing["baseline"]


def test_cli_refuses_a_malicious_folder_in_one_line(tmp_path):
    marker = tmp_path / "pwned"
    fastai_folder(tmp_path / "models", {}, pickle.dumps(Payload(marker)))
    proc = subprocess.run([sys.executable, "-m", "blgenre", "app", "--models",
                           str(tmp_path / "models")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not list model.pkl" in lines[0], proc.stderr
    assert not marker.exists()


def test_the_hash_limits_are_stated_plainly():
    assert "not against someone who can change both files" in HASH_LIMITS
    for fmt in ("skops", "safetensors", "ONNX"):
        assert fmt in HASH_LIMITS

"""Which outputs of a build are the same bytes in every build, and the check that they are.

Serves the chapter 'Sharing data and keeping it safe'. A fixity check (:mod:`blgenre.sharing.
lockss`) only proves that a copy did not change; that a *rebuild* gives the same bytes is what
lets anyone check that the deposited models are what this book's code makes. So the outputs
that are shared hold nothing that differs from one build to the next:

- no build times: durations (``seconds``, ``*_seconds``) and the machine (``hardware``) are
  measurements of one build, kept in the model folder's ``model.json`` for the book's chapters
  but left out of the shared copies (:func:`blgenre.runinfo.stable`): the Hub folders'
  ``model.json`` and cards;
- no absolute paths (files are named relative to their folder) and archives with fixed times
  and file order (:func:`blgenre.sharing.deposit.add_to_zip`, honouring ``SOURCE_DATE_EPOCH``).

What stays different: a transformer fine-tuned on another CPU (or another number of threads)
sums its gradients in another order, so its weights may differ in the last bits; its metrics
then agree to well within 0.005. :func:`fingerprints` lists the sha256 of each output that
should agree, so two builds can be compared (``python -m blgenre.sharing.reproduce A B``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from blgenre.integrity import sha256_file

#: The outputs two clean builds of one commit should give byte for byte (paths relative to
#: ``artifacts/``; globs allowed). The transformer's weights are listed too: on one machine they
#: agree, which is worth knowing, but another CPU may change their last bits.
REPRODUCIBLE = (
    "split.csv", "split.json",
    "models/baseline/model.skops", "models/fastai/model.pkl", "models/fastai/history.json",
    "models/transformer/model.safetensors",
    "hub/*/model.json", "hub/*/README.md", "deposit/*.zip",
)


def fingerprints(root: str | Path) -> dict[str, str]:
    """sha256 of each reproducible output found under ``root`` (an ``artifacts/`` folder)."""
    root = Path(root)
    found = {}
    for pattern in REPRODUCIBLE:
        for path in sorted(root.glob(pattern)):
            found[path.relative_to(root).as_posix()] = sha256_file(path)
    return found


def compare(first: dict[str, str], second: dict[str, str]) -> pd.DataFrame:
    """Side by side: each output's sha256 (first 16 hex digits) in two builds, and whether equal."""
    rows = [{"output": name, "first build": first.get(name, "")[:16],
             "second build": second.get(name, "")[:16],
             "same bytes": first.get(name) == second.get(name)}
            for name in sorted(set(first) | set(second))]
    return pd.DataFrame(rows)


def _load(arg: str) -> dict[str, str]:
    """Fingerprints of an ``artifacts/`` folder, or a JSON file written by an earlier run."""
    path = Path(arg)
    if path.is_dir():
        return fingerprints(path)
    if not path.is_file():
        raise ValueError(f"{arg}: no such folder or file (give an artifacts/ folder or the JSON "
                         "this command printed for one)")
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValueError(f"{arg}: not a fingerprint file (JSON printed by this command)") from None
    if not isinstance(found, dict):
        raise ValueError(f"{arg}: not a fingerprint file (JSON printed by this command)")
    return found


def main(argv: list[str] | None = None) -> int:
    """``python -m blgenre.sharing.reproduce A [B]``: fingerprints of A, or A and B compared."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m blgenre.sharing.reproduce",
        description="sha256 of a build's reproducible outputs, or two builds compared "
                    "(exit code 1 if any output differs).")
    parser.add_argument("first", help="an artifacts/ folder, or the JSON printed for one")
    parser.add_argument("second", nargs="?", help="another build's, to compare with the first")
    args = parser.parse_args(argv)
    try:
        prints = [_load(a) for a in (args.first, args.second) if a is not None]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if len(prints) == 1:
        print(json.dumps(prints[0], indent=2))
        return 0
    table = compare(*prints)
    print(table.to_string(index=False))
    return 0 if table["same bytes"].all() else 1


if __name__ == "__main__":
    sys.exit(main())

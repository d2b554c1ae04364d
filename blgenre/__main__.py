"""Command line: ``python -m blgenre <command>``.

Commands:
  predict   classify titles from a file with a saved model
  split     (re)create the train / validation / test split under artifacts/
  publish   upload a Hub folder (artifacts/hub/<model>) to the Hugging Face Hub
  verify    check the LOCKSS copies (default: artifacts/lockss) against their manifest
  repair    restore lost or damaged copies and bags from a copy that verifies
  app       start the demo web app and its API (http://127.0.0.1:7860 by default)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from blgenre.errors import BLGenreError


@contextlib.contextmanager
def _os_errors(what: str):
    """A file-system failure (permissions, a full disk) as one line instead of a traceback."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise BLGenreError(f"{what}: {exc.strerror or exc}{where}") from None


def _predict(args: argparse.Namespace) -> int:
    from blgenre.models.predict import input_notes, predict_file

    start = time.perf_counter()
    result = predict_file(args.model, args.input, args.output, args.batch_size,
                          fast=getattr(args, "fast", False))
    for note in input_notes(result["title"].tolist()):
        print(f"note: {note}", file=sys.stderr)
    n = int((result["label"] != "").sum())
    print(f"wrote {len(result)} rows ({n} classified) to {args.output} "
          f"in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _split(args: argparse.Namespace) -> int:
    import json

    from blgenre.data.loading import ALLOW_UNKNOWN_ENV
    from blgenre.data.split import create_split, split_paths

    if args.allow_unknown_data:
        os.environ[ALLOW_UNKNOWN_ENV] = "1"
    with _os_errors("cannot write the split"):
        df = create_split(args.seed)
        info = json.loads(split_paths()[1].read_text())
    print(df.groupby(["split", "label"]).size().to_string())
    check = info.get("load_report", {}).get("source_check", {})
    if check.get("status") == "unknown":
        print(f"warning: {check.get('note', 'the data file is not the one the book knows')}",
              file=sys.stderr)
    return 0


def _app(args: argparse.Namespace) -> int:
    from blgenre.sharing.app import main as app_main

    return app_main(args.host, args.port, args.models)


def _publish(args: argparse.Namespace) -> int:
    from blgenre.sharing.hub import TOKEN_ARG_WARNING, publish

    if args.token:
        print(TOKEN_ARG_WARNING, file=sys.stderr)
    with _os_errors("cannot read the Hub folder"):
        url = publish(args.folder, args.repo_id, token=args.token, private=args.private)
    print(f"published {args.folder} to {url}", file=sys.stderr)
    return 0


def _print_report(report: dict) -> int:
    """One line per bag (or copy), its problems indented; the number that failed."""
    bad = 0
    for bag, problems in report.items():
        print(f"{'ok    ' if not problems else 'FAILED'} {bag}")
        for problem in problems:
            print(f"       {problem.file}: {problem.problem}")
        bad += bool(problems)
    return bad


def _verify(args: argparse.Namespace) -> int:
    from blgenre.sharing.lockss import verify

    with _os_errors("cannot read the copies"):
        report = verify(args.paths)
    bad = _print_report(report)
    print(f"{len(report) - bad} of {len(report)} bag(s) intact"
          + (": run `python -m blgenre repair` to restore them from a good copy" if bad else ""),
          file=sys.stderr)
    return 1 if bad else 0


def _repair(args: argparse.Namespace) -> int:
    from blgenre.sharing.lockss import repair_copies, verify_root

    with _os_errors("cannot repair the copies"):
        done, left = repair_copies(args.root)
        report = verify_root(args.root)
    for line in done:
        print(f"restored {line}")
    for line in left:
        print(f"NOT restored {line}")
    bad = sum(bool(p) for p in report.values())
    print(f"{len(done)} repair(s); {len(report) - bad} of {len(report)} bag(s) intact now",
          file=sys.stderr)
    return 1 if bad else 0


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{text}: a seed is a whole number from 0 to 2**32 - 1")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text}: a port is a number from 1 to 65535")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blgenre", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("predict", help="classify titles with a saved model")
    p.add_argument("--model", required=True, help="model folder, e.g. artifacts/models/baseline")
    p.add_argument("--input", required=True,
                   help="text file (one title per line) or CSV with a 'title' column")
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--fast", action="store_true",
                   help="use the model's cheaper CPU variant where it has one (transformer: int8)")
    p.set_defaults(func=_predict)

    s = sub.add_parser("split", help="create the train / validation / test split")
    s.add_argument("--seed", type=_seed, default=42)
    s.add_argument("--allow-unknown-data", action="store_true",
                   help="accept a data file whose sha256 the book does not know (a newer "
                        "export); split.json records that it was unknown")
    s.set_defaults(func=_split)

    pub = sub.add_parser("publish", help="upload a Hub folder to the Hugging Face Hub")
    pub.add_argument("--folder", required=True, help="e.g. artifacts/hub/baseline")
    pub.add_argument("--repo-id", required=True, help="user-or-organisation/name")
    pub.add_argument("--token", default=None,
                     help="Hugging Face token with write access; better: set HF_TOKEN, or "
                          "give none and publish asks for it (a token here shows in `ps`)")
    pub.add_argument("--private", action="store_true", help="create the repository as private")
    pub.set_defaults(func=_publish)

    v = sub.add_parser("verify", help="check LOCKSS copies: lost copies or bags, damaged files")
    v.add_argument("paths", nargs="*",
                   help="LOCKSS roots, copies, bags or folders of bags (default: every copy "
                        "under artifacts/lockss, against its manifest)")
    v.set_defaults(func=_verify)

    r = sub.add_parser("repair", help="restore lost or damaged copies from a copy that verifies")
    r.add_argument("--root", default=None, help="folder holding the copies (default artifacts/lockss)")
    r.set_defaults(func=_repair)

    a = sub.add_parser("app", help="start the demo web app and its API")
    a.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    a.add_argument("--port", type=_port, default=7860)
    a.add_argument("--models", default=None,
                   help="folder holding the model folders (default artifacts/models)")
    a.set_defaults(func=_app)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BLGenreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

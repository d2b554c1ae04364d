"""Command line: ``python -m blgenre <command>``.

Commands:
  predict   classify titles from a file with a saved model
  split     (re)create the train / validation / test split under artifacts/
  publish   upload a Hub folder (artifacts/hub/<model>) to the Hugging Face Hub
  verify    check the BagIt fixity of LOCKSS copies (default: artifacts/lockss/copy-*)
  app       start the demo web app and its API (http://127.0.0.1:7860 by default)
"""

from __future__ import annotations

import argparse
import sys
import time

from blgenre.errors import BLGenreError


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
    from blgenre.data.split import create_split

    df = create_split(args.seed)
    print(df.groupby(["split", "label"]).size().to_string())
    return 0


def _app(args: argparse.Namespace) -> int:
    from blgenre.sharing.app import main as app_main

    return app_main(args.host, args.port, args.models)


def _publish(args: argparse.Namespace) -> int:
    from blgenre.sharing.share import publish

    url = publish(args.folder, args.repo_id, token=args.token, private=args.private)
    print(f"published {args.folder} to {url}", file=sys.stderr)
    return 0


def _verify(args: argparse.Namespace) -> int:
    from blgenre.sharing.share import verify

    report = verify(args.paths)
    bad = 0
    for bag, problems in report.items():
        print(f"{'ok    ' if not problems else 'FAILED'} {bag}")
        for problem in problems:
            print(f"       {problem.file}: {problem.problem}")
        bad += bool(problems)
    print(f"{len(report) - bad} of {len(report)} bag(s) intact", file=sys.stderr)
    return 1 if bad else 0


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
    s.add_argument("--seed", type=int, default=42)
    s.set_defaults(func=_split)

    pub = sub.add_parser("publish", help="upload a Hub folder to the Hugging Face Hub")
    pub.add_argument("--folder", required=True, help="e.g. artifacts/hub/baseline")
    pub.add_argument("--repo-id", required=True, help="user-or-organisation/name")
    pub.add_argument("--token", default=None,
                     help="Hugging Face token with write access (default: HF_TOKEN)")
    pub.add_argument("--private", action="store_true", help="create the repository as private")
    pub.set_defaults(func=_publish)

    v = sub.add_parser("verify", help="check LOCKSS copies (BagIt bags) for missing or altered files")
    v.add_argument("paths", nargs="*", help="bags or folders of bags (default: artifacts/lockss/copy-*)")
    v.set_defaults(func=_verify)

    a = sub.add_parser("app", help="start the demo web app and its API")
    a.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1: this machine only)")
    a.add_argument("--port", type=int, default=7860)
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

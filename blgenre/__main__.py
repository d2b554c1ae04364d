"""Command line: ``python -m blgenre <command>``.

Commands:
  predict   classify titles from a file with a saved model
  train     train a model on your own labelled titles (two or more labels)
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
from blgenre.seed import SEED

FORMATS = ("auto", "marc", "csv", "tsv", "text")


@contextlib.contextmanager
def _os_errors(what: str):
    """A file-system failure (permissions, a full disk) as one line instead of a traceback."""
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        raise BLGenreError(f"{what}: {exc.strerror or exc}{where}") from None


def _predict(args: argparse.Namespace) -> int:
    from blgenre.models.predict import Options, notes, run_predict

    start = time.perf_counter()
    opts = Options(args.model, args.input, args.output, args.format, args.title_column,
                   args.id_column, args.marc_out, args.review_out, args.precision,
                   args.genre_source, args.batch_size, args.chunk_size, args.fast, args.resume,
                   args.overwrite, False if args.quiet else None, args.streams)
    try:
        counts = run_predict(opts)
    except KeyboardInterrupt:
        print(f"interrupted: the rows written so far are kept in {args.output}.partial; run the "
              "same command with --resume to continue", file=sys.stderr)
        return 130
    for note in notes(counts):
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {counts.records} rows ({counts.classified} classified) to {args.output} "
          f"in {time.perf_counter() - start:.1f} s, with {counts.model}", file=sys.stderr)
    if args.marc_out:
        outputs = opts.outputs()
        print(f"{counts.automatic} record(s) got a genre term at {args.precision:.0%} validation "
              f"precision in {args.marc_out}; {counts.review} to review in {outputs['review']}",
              file=sys.stderr)
    return 0


def _train(args: argparse.Namespace) -> int:
    from blgenre.models.own_labels import train_own

    result = train_own(args.kind, args.labels, args.out, args.text_column, args.label_column,
                       args.id_column, seed=args.seed, overwrite=args.overwrite)
    print(result.summary(), file=sys.stderr)
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

    p = sub.add_parser("predict", help="classify titles with a saved model",
                       description="Classify every record of a MARC file, a CSV/TSV or a list "
                       "of titles; the output CSV keeps the input's order.")
    p.add_argument("--model", required=True, help="model folder, e.g. artifacts/models/baseline")
    p.add_argument("--input", required=True,
                   help="MARC21 (.mrc, .xml; gzipped or not), CSV/TSV with a title column, or "
                   "text (one title per line)")
    p.add_argument("--output", required=True, help="CSV to write")
    p.add_argument("--format", default="auto", choices=FORMATS,
                   help="input format (default: from the file name and its first bytes)")
    p.add_argument("--title-column", default=None,
                   help="CSV/TSV column holding the titles (default: the one named 'title')")
    p.add_argument("--id-column", default=None,
                   help="CSV/TSV column holding record ids (default: 'id', 'record_id', ... "
                   "if there is exactly one; else the row number)")
    p.add_argument("--marc-out", default=None, help="MARC copy (.xml or .mrc) of the input with a "
                   "655 genre term for each record labelled at --precision")
    p.add_argument("--review-out", default=None,
                   help="review list CSV for --marc-out (default: <output>-review.csv)")
    p.add_argument("--precision", type=float, default=0.95,
                   help="target precision of automatic genre terms, on the validation split "
                   "(default 0.95)")
    p.add_argument("--genre-source", default="blgenre",
                   help="the 655 $2 source code (default 'blgenre'; 'local' if your system "
                   "only accepts registered codes)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--chunk-size", type=int, default=10_000,
                   help="records read, predicted and written at a time (default 10000)")
    p.add_argument("--fast", action="store_true",
                   help="use the model's cheaper CPU variant where it has one (transformer)")
    p.add_argument("--streams", type=int, default=None,
                   help="prediction processes (default: 2 for fastai on a machine with 2 or more "
                   "cores, else 1); the output is the same")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from the rows already written")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_predict)

    t = sub.add_parser("train", help="train a model on your own labelled titles",
                       description="Train any model kind on a CSV of your own labelled titles "
                       "(two or more labels), evaluate it on a held-out test part and write a "
                       "model folder with its model card.")
    t.add_argument("--kind", required=True, help="model kind: baseline, fastai or transformer")
    t.add_argument("--labels", required=True, help="CSV with a text column and a label column")
    t.add_argument("--text-column", default="title")
    t.add_argument("--label-column", default="genre")
    t.add_argument("--id-column", default=None,
                   help="record ids: rows sharing one stay in the same part of the split")
    t.add_argument("--out", required=True, help="model folder to write, e.g. my-model/")
    t.add_argument("--seed", type=int, default=SEED)
    t.add_argument("--overwrite", action="store_true", help="replace an existing model folder")
    t.set_defaults(func=_train)

    s = sub.add_parser("split", help="create the train / validation / test split")
    s.add_argument("--seed", type=_seed, default=SEED)
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

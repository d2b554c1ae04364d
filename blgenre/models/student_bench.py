"""How many layers the transformer's student keeps: settings tried on the validation split.

Serves the chapter 'Inference at scale'. Each setting (layers kept, passes over the titles) is
taught like the book's student (:func:`blgenre.models.transformer_student.teach`), checked on
the **validation** split as ``--fast`` checks every cheaper copy, and its int8 file timed
beside the teacher's on the same pool titles. Teaching takes minutes per setting on two cores,
so the chapter shows a committed run (:data:`COMMITTED`), made setting by setting with
``python -m blgenre.models.student_bench --layers 0,2,4 --append --out
benchmarks/transformer_student.json`` after a full build; the layers the book keeps
(:data:`blgenre.models.transformer_student.LAYERS`) were chosen from it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pandas as pd

from blgenre import runinfo
from blgenre.models import transformer_student as ts
from blgenre.models.fast_choice import titles_per_second
from blgenre.paths import PROJECT_ROOT

#: Pool titles both int8 files are timed on.
SPEED_TITLES = 3000
COMMITTED = PROJECT_ROOT / "benchmarks" / "transformer_student.json"


def measure(teacher, pool: pd.DataFrame, train: pd.DataFrame, valid: pd.DataFrame,
            layers: tuple[int, ...] | None = None, epochs: int | None = None,
            speed_titles: int = SPEED_TITLES) -> dict:
    """Teach one setting, check its int8 file against ``teacher`` on ``valid`` and time both
    int8 files on the first ``speed_titles`` of ``pool``. ``teacher`` is saved; its own int8
    file is exported (and checked) if it is not yet."""
    from blgenre.models.onnx_export import ensure_onnx, verdict
    from blgenre.models.onnx_runtime import OnnxTransformer

    timed = pool["title"].tolist()[:speed_titles]
    with tempfile.TemporaryDirectory(prefix="blgenre-student-") as tmp:
        taught = ts.teach(teacher, pool, train, valid, Path(tmp) / "student.onnx", layers,
                          epochs)
        check = verdict(ts.check_against(teacher, taught.fast, valid), "int8")
        ensure_onnx(teacher.kind, teacher.folder)
        speed = {"teacher int8": titles_per_second(OnnxTransformer.from_model(teacher), timed),
                 "student int8": titles_per_second(taught.fast, timed)}
    return {"layers": list(ts.LAYERS if layers is None else layers),
            "teacher_layers": teacher.model.config.num_hidden_layers,
            "epochs": len(taught.table), "learning_rate": ts.LEARNING_RATE,
            "pool_titles": len(pool), "gold_titles": len(train), "train_seconds": round(taught.seconds, 1),
            "epochs_table": taught.table.round(4).to_dict(orient="records"),
            "quantisation": taught.quantisation["chosen"], "check": check,
            "speed_titles": len(timed), "titles_per_s": {k: round(v, 1) for k, v in speed.items()}}


def measure_book(**kwargs) -> dict:
    """:func:`measure` for the book's transformer, pool and split, with the run's provenance."""
    from blgenre import settings
    from blgenre.data import split
    from blgenre.models import ensure
    from blgenre.weak.teacher import teacher_labels

    report = measure(ensure("transformer").model, teacher_labels(), split.part("train"),
                     split.part("valid"), **kwargs)
    return {**report, "mode": "workshop" if settings.workshop() else "full",
            "split_sha256": split.split_info()["split_sha256"],
            "hardware": runinfo.hardware(), "versions": runinfo.versions(),
            "commit": runinfo.commit(ignore=COMMITTED)}


def committed(path: str | Path = COMMITTED) -> dict | None:
    """The committed runs (``{"runs": [...]}``), if present."""
    return runinfo.read_report(path)


def table(record: dict) -> pd.DataFrame:
    """One row per setting tried: validation check, speed beside the teacher, teaching time."""
    rows = []
    for run in record["runs"]:
        check, speed = run["check"], run["titles_per_s"]
        rows.append({"layers kept": ",".join(map(str, run["layers"])),
                     "passes over the titles": run["epochs"],
                     "int8 setting": run.get("quantisation", "not recorded"),
                     "valid macro-F1": check["macro_f1"], "teacher's": check["macro_f1_original"],
                     "labels kept": check["label_agreement"],
                     "passes --fast's check": check["passed"],
                     "titles/s (int8)": speed["student int8"],
                     "teacher titles/s (int8)": speed["teacher int8"],
                     "minutes to teach": run["train_seconds"] / 60, "commit": run["commit"]})
    return pd.DataFrame(rows).round(4)


def appended(earlier: list[dict], run: dict) -> list[dict]:
    """``earlier`` runs, less any of the same setting (measured again), then ``run``."""
    same = (run["layers"], run["epochs"])
    return [r for r in earlier if (r["layers"], r["epochs"]) != same] + [run]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m blgenre.models.student_bench",
        description="Teach a smaller transformer from the book's transformer and check whether "
        "predict --fast could use it (validation split; needs a built book's models).")
    parser.add_argument("--layers", default=",".join(map(str, ts.LAYERS)),
                        help="teacher layers the student keeps (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=ts.EPOCHS)
    parser.add_argument("--out", default=None, help="JSON file to write (default: print it)")
    parser.add_argument("--append", action="store_true",
                        help="add this run to the runs already in --out (replacing one of "
                        "the same setting)")
    args = parser.parse_args(argv)
    try:
        layers = tuple(int(x) for x in args.layers.split(","))
    except ValueError:
        parser.error(f"--layers: expected numbers separated by commas, got {args.layers!r}")
    earlier = (runinfo.read_report(args.out) or {}).get("runs", []) if args.append and args.out \
        else []
    run = measure_book(layers=layers, epochs=args.epochs)
    runinfo.write_report({"runs": appended(earlier, run)}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

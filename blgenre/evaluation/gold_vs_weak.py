"""Gold-only against gold + weak: the table each model chapter shows.

Serves the model chapters and the chapter *Weak supervision*. Both variants of a model were
scored on the same test books (:func:`blgenre.evaluation.evaluate.evaluate`), so they are compared
pair by pair with the paired bootstrap of the chapter *Comparing the models*
(:func:`blgenre.evaluation.compare.paired_bootstrap`), on all test records and on the records the
audit calls *consistent* (whose crowdsourced answers fit the catalogue).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from blgenre import runinfo
from blgenre.evaluation.compare import aligned, paired_bootstrap
from blgenre.evaluation.evaluate import bootstrap_ci, macro_f1
from blgenre.paths import PROJECT_ROOT


def with_status(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (test predictions) with the audit's ``status`` per record."""
    from blgenre.weak.noise import record_status

    return frame.assign(status=record_status(frame).to_numpy())


def comparison(gold: str, weak: str | None = None, seed: int = 0) -> pd.DataFrame:
    """One row per record set (all, consistent): macro-F1 of each variant with its 95% bootstrap
    interval, and the paired-bootstrap difference (weak - gold) with its interval.

    ``weak`` defaults to the registered weak variant of ``gold``. Both must have been evaluated
    (``artifacts/predictions/<name>.csv``).
    """
    from blgenre.models import registry

    weak = weak or registry.weak_variant_of(gold)
    if weak is None:
        raise ValueError(f"no weak-label variant of {gold!r} is registered")
    frame = with_status(aligned([gold, weak]))
    rows = []
    for records, sub in (("all", frame), ("consistent", frame[frame["status"] == "consistent"])):
        row = {"records": records, "n": len(sub)}
        for name, label in ((gold, "gold only"), (weak, "gold + weak")):
            lo, hi = bootstrap_ci(sub["label"], sub[f"pred_{name}"], seed=seed)
            row[f"{label} macro-F1"] = macro_f1(sub["label"], sub[f"pred_{name}"])
            row[f"{label} 95% CI"] = f"{lo:.3f}–{hi:.3f}"
        diff = paired_bootstrap(sub["label"], sub[f"pred_{gold}"], sub[f"pred_{weak}"], seed=seed)
        row.update({"difference": diff["diff"], "difference 95% CI":
                    f"{diff['lo']:+.3f} to {diff['hi']:+.3f}",
                    "weak better in share of resamples": diff["share_b_better"]})
        rows.append(row)
    return pd.DataFrame(rows).set_index("records").round(3)


def all_comparisons(names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """:func:`comparison` for every gold-only kind that has an evaluated weak variant."""
    from blgenre.evaluation.compare import available_models
    from blgenre.models import registry

    frames = {}
    for gold in names or registry.names():
        weak = registry.weak_variant_of(gold)
        if weak and len(available_models([gold, weak])) == 2:
            frames[gold] = comparison(gold, weak)
    return pd.concat(frames, names=["model"]) if frames else pd.DataFrame()


#: Where the committed measurement of every gold-only model against its weak variant lives.
COMMITTED = PROJECT_ROOT / "benchmarks" / "weak_variants.json"


def measure(names: tuple[str, ...] | None = None) -> dict:
    """Train (or reuse) every gold-only model and its variants, and compare them.

    Per model: each variant's validation macro-F1 (where the choice between them is made) and
    training time, and the test comparison of :func:`comparison`. The neural weak variants take
    most of twenty minutes to train on two cores, which is why the book shows a committed run of
    this (:data:`COMMITTED`) rather than training them at every build.
    """
    from blgenre import settings
    from blgenre.data import split
    from blgenre.models import registry

    rows = []
    for gold in names or registry.names():
        for weak in registry.variants_of(gold):
            rows.append(_measure_pair(gold, weak))
    return {"rows": rows, "mode": "workshop" if settings.workshop() else "full",
            "split_sha256": split.split_info()["split_sha256"],
            "hardware": runinfo.hardware(), "versions": runinfo.versions(),
            "commit": runinfo.commit()}


def _measure_pair(gold: str, weak: str) -> dict:
    from blgenre.models import ensure

    models = {n: ensure(n) for n in (gold, weak)}
    table = comparison(gold, weak)
    return {"model": gold, "variant": weak,
            "valid_macro_f1": {n: models[n].model.meta.get("valid_macro_f1") for n in models},
            "train_seconds": {n: _train_seconds(models[n].model.meta) for n in models},
            "test": table.reset_index().to_dict(orient="records")}


def _train_seconds(meta: dict) -> float | None:
    seconds = meta.get("train_seconds", meta.get("seconds"))
    return seconds.get("total") if isinstance(seconds, dict) else seconds


def committed(path: str | Path = COMMITTED) -> dict | None:
    """The committed :func:`measure` run (``benchmarks/weak_variants.json``), if present."""
    return runinfo.read_report(path)


def valid_table(record: dict) -> pd.DataFrame:
    """Validation macro-F1 and training time of each variant in a :func:`measure` record, and
    which one the validation split picks."""
    rows = []
    for row in record["rows"]:
        gold, weak = row["model"], row["variant"]
        f1 = row["valid_macro_f1"]
        rows.append({"model": gold, "variant": weak, "gold only (valid)": f1[gold],
                     "variant (valid)": f1[weak],
                     "validation picks": weak if f1[weak] > f1[gold] else gold,
                     "seconds (gold only)": row["train_seconds"][gold],
                     "seconds (variant)": row["train_seconds"][weak]})
    return pd.DataFrame(rows).set_index(["model", "variant"]).round(3)


def test_table(record: dict) -> pd.DataFrame:
    """The test comparisons of a :func:`measure` record, one row per variant and record set."""
    frames = {row["variant"]: pd.DataFrame(row["test"]).set_index("records")
              for row in record["rows"]}
    return pd.concat(frames, names=["variant"])


def verdicts(record: dict) -> str:
    """One sentence per variant of a :func:`measure` record: what validation picks, what the
    test split then says (for the book's prose, so that no number in it is typed in)."""
    picks, tests = valid_table(record), test_table(record)
    out = []
    for (gold, weak), row in picks.iterrows():
        t = tests.loc[weak]
        out.append(f"{weak} scores {row['variant (valid)']:.3f} on validation against "
                   f"{row['gold only (valid)']:.3f} for {gold}, so validation picks "
                   f"{row['validation picks']}; on the test split it differs by "
                   f"{t.loc['all', 'difference']:+.3f} ({t.loc['all', 'difference 95% CI']}) "
                   f"on all books and {t.loc['consistent', 'difference']:+.3f} "
                   f"({t.loc['consistent', 'difference 95% CI']}) on consistent ones")
    return "; ".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blgenre.evaluation.gold_vs_weak",
                                     description="Train every variant (weak labels, distillation) "
                                     "and compare it with its gold-only model (validation and test).")
    parser.add_argument("--out", default=None, help="JSON file to write (default: print it)")
    args = parser.parse_args(argv)
    runinfo.write_report(measure(), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

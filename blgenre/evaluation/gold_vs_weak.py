"""Gold-only against gold + weak: the table each model chapter shows.

Serves the model chapters and the chapter *Weak supervision*. Both variants of a model were
scored on the same test books (:func:`blgenre.evaluation.evaluate.evaluate`), so they are compared
pair by pair with the paired bootstrap of the chapter *Comparing the models*
(:func:`blgenre.evaluation.compare.paired_bootstrap`), on all test records and on the records the
audit calls *consistent* (whose crowdsourced answers fit the catalogue).
"""

from __future__ import annotations

import pandas as pd

from blgenre.evaluation.compare import aligned, paired_bootstrap
from blgenre.evaluation.evaluate import bootstrap_ci, macro_f1


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

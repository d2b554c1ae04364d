"""What a model says about a whole collection: the share of fiction by decade and by place.

Serves the chapter 'Your own collection'. A model's labels for a catalogue are not the truth: a
classifier that misses a third of the fiction, or calls some non-fiction fiction, biases the
share it reports. The share of fiction per group is therefore corrected for the model's error
rates measured on the labelled test split (*adjusted classify-and-count*: if the model finds a
share ``q`` labelled Fiction, and labels true fiction Fiction with rate ``tpr`` and non-fiction
with rate ``fpr``, the corrected share is ``(q - fpr) / (tpr - fpr)``), and its 95% interval is
a bootstrap over both the group's records and the test books, so it carries both kinds of
uncertainty. The correction assumes the model errs on the collection as it did on the test
books, which is only roughly true for books unlike the labelled ones.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from blgenre.data import LABELS

MIN_GROUP = 30
N_BOOT = 1000


def place_name(text: object) -> str:
    """The first place of a publication statement, without ISBD punctuation or brackets."""
    first = re.split(r"[;:,\[\]()&]| and ", str(text or ""))
    first = next((p.strip(" .?") for p in first if p.strip(" .?")), "")
    return first or "unknown"


def marc_facts(path: str | Path) -> pd.DataFrame:
    """``record_id``, ``year``, ``place`` of every record of a MARC file."""
    from blgenre.data.marc import iter_records, record_fields

    rows = []
    for record in iter_records(path):
        f = record_fields(record)
        rows.append({"record_id": f["id"], "year": f["year"], "place": place_name(f["place"])})
    return pd.DataFrame(rows)


def table_facts(path: str | Path, id_column: str, year_column: str,
                place_column: str) -> pd.DataFrame:
    """``record_id``, ``year``, ``place`` from a CSV (such as the Flickr books)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    year = pd.to_numeric(frame[year_column].str.extract(r"(1[5-9]\d\d)")[0], errors="coerce")
    return pd.DataFrame({"record_id": frame[id_column], "year": year,
                         "place": frame[place_column].map(place_name)})


def error_rates(test_predictions: pd.DataFrame, n_boot: int = N_BOOT,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap draws of (tpr, fpr) of labelling Fiction, from test ``label`` and ``pred``."""
    rng = np.random.default_rng(seed)
    fiction = (test_predictions["label"] == LABELS[0]).to_numpy()
    said = (test_predictions["pred"] == LABELS[0]).to_numpy()
    idx = rng.integers(0, len(fiction), size=(n_boot, len(fiction)))
    f, s = fiction[idx], said[idx]
    tpr = (f & s).sum(1) / np.maximum(f.sum(1), 1)
    fpr = (~f & s).sum(1) / np.maximum((~f).sum(1), 1)
    return tpr, fpr


def share_by(frame: pd.DataFrame, by: str, tpr: np.ndarray, fpr: np.ndarray,
             min_group: int = MIN_GROUP, seed: int = 0) -> pd.DataFrame:
    """Per value of ``by``: books, share labelled Fiction, corrected share and its 95% interval."""
    rng = np.random.default_rng(seed)
    rows = []
    for key, g in frame[frame["label"] != ""].groupby(by, sort=True):
        n = len(g)
        if n < min_group:
            continue
        q = float((g["label"] == LABELS[0]).mean())
        q_boot = rng.binomial(n, q, size=len(tpr)) / n
        adj = np.clip((q_boot - fpr) / np.maximum(tpr - fpr, 1e-6), 0, 1)
        rows.append({by: key, "books": n, "labelled_fiction": q,
                     "fiction_share": float(np.clip((q - fpr.mean()) / (tpr.mean() - fpr.mean()),
                                                    0, 1)),
                     "low": float(np.quantile(adj, 0.025)),
                     "high": float(np.quantile(adj, 0.975))})
    return pd.DataFrame(rows)


def plot_shares(by_decade: dict[str, pd.DataFrame], by_place: dict[str, pd.DataFrame]):
    """Corrected share of fiction with 95% intervals: by decade (lines), by place (bars)."""
    from blgenre.evaluation.plots import plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2),
                                      gridspec_kw={"width_ratios": [1.3, 1]})
    for (name, d), color in zip(by_decade.items(), ("#b2182b", "#2166ac"), strict=False):
        left.plot(d["decade"], 100 * d["fiction_share"], "o-", color=color, label=name)
        left.fill_between(d["decade"], 100 * d["low"], 100 * d["high"], color=color, alpha=0.2)
    left.set_xlabel("decade of publication")
    left.set_ylabel("% fiction (corrected, 95% interval)")
    left.set_ylim(0, 100)
    left.legend(fontsize=8)
    left.set_title("Share of fiction by decade")
    frames = [d.assign(source=name) for name, d in by_place.items()]
    places = pd.concat(frames).sort_values("fiction_share") if frames else pd.DataFrame()
    labels = [f"{r.place} ({r.source}, {r.books})" for r in places.itertuples()]
    y = np.arange(len(places))
    right.barh(y, 100 * places["fiction_share"], color="#b2182b", alpha=0.7)
    right.errorbar(100 * places["fiction_share"], y, fmt="none", ecolor="black", capsize=2,
                   xerr=[100 * (places["fiction_share"] - places["low"]),
                         100 * (places["high"] - places["fiction_share"])])
    right.set_yticks(y, labels, fontsize=7)
    right.set_xlabel("% fiction (corrected, 95% interval)")
    right.set_xlim(0, 100)
    right.set_title("By place of publication (books)")
    fig.tight_layout()
    return fig

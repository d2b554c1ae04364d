"""Figures shared by the chapters (matplotlib, saved under ``artifacts/figures``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless builds
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from blgenre.paths import figure_path  # noqa: E402

COLORS = {"Fiction": "#b2182b", "Non-fiction": "#2166ac"}


def save(fig: plt.Figure, name: str) -> plt.Figure:
    """Save ``fig`` as ``artifacts/figures/<name>.png`` and return it for display."""
    fig.tight_layout()
    fig.savefig(figure_path(f"{name}.png"), dpi=110)
    return fig


def confusion(metrics: dict, title: str | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """Confusion matrix (counts) from a metrics dict written by the evaluation harness."""
    cm = np.array(metrics["confusion_matrix"]["matrix"])
    labels = metrics["confusion_matrix"]["labels"]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(3.8, 3.4))
    ax.imshow(cm, cmap="Blues")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(v), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true (annotators)")
    ax.set_title(title or metrics.get("model", ""))
    return fig


def group_scores(metrics: dict, by: str = "by_language", title: str = "") -> plt.Figure:
    """Macro-F1 per group as horizontal bars; groups too small to judge are drawn hatched."""
    df = pd.DataFrame(metrics[by]).T
    df = df.sort_index() if by == "by_decade" else df.sort_values("n")
    fig, ax = plt.subplots(figsize=(6, 0.35 * len(df) + 1.2))
    scores = pd.to_numeric(df["macro_f1"], errors="coerce").fillna(0.0)
    bars = ax.barh(df.index, scores, color="#4d7ea8")
    for bar, small, n in zip(bars, df["too_small"], df["n"], strict=True):
        if small:
            bar.set_hatch("//")
            bar.set_alpha(0.5)
        note = f"n={int(n)}" if bar.get_width() else f"n={int(n)}, one label only: no F1"
        ax.text(bar.get_width() + 0.01, bar.get_y() + bar.get_height() / 2, note,
                va="center", fontsize=8)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("macro-F1 (hatched: fewer than 30 test titles)")
    ax.set_title(title or f"{metrics.get('model', '')}: macro-F1 {by.replace('_', ' ')}")
    return fig


def label_share(frame: pd.DataFrame, by: str, top: int | None = None, title: str = "") -> plt.Figure:
    """Stacked bars of Fiction / Non-fiction counts per value of ``by``."""
    counts = frame.groupby([by, "label"]).size().unstack(fill_value=0)
    if top:
        counts = counts.loc[counts.sum(axis=1).sort_values(ascending=False).index[:top]]
    fig, ax = plt.subplots(figsize=(7, 3.4))
    counts.plot.bar(stacked=True, ax=ax, color=[COLORS.get(c, "grey") for c in counts.columns])
    ax.set_ylabel("books")
    ax.set_xlabel(by)
    ax.set_title(title)
    ax.legend(title="label")
    return fig


# --- Part I (the data): crowdsourcing, exploration and audit figures -------------------------


def bars(counts: pd.Series, title: str = "", xlabel: str = "", ylabel: str = "count",
         horizontal: bool = False, color: str = "#4d7ea8", annotate: bool = True) -> plt.Figure:
    """A simple bar chart of ``counts`` (index = categories), with the values written on bars."""
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(counts) + 1.4) if horizontal else (6.5, 3.4))
    labels = [str(i) for i in counts.index]
    if horizontal:
        rects = ax.barh(labels[::-1], counts.to_numpy()[::-1], color=color)
        ax.set_xlabel(ylabel)
        ax.set_ylabel(xlabel)
    else:
        rects = ax.bar(labels, counts.to_numpy(), color=color)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if sum(len(label) for label in labels) > 60:  # long or many labels: slant them
            ax.tick_params(axis="x", rotation=45)
            plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
    if annotate:
        ax.bar_label(rects, fontsize=8, padding=2)
    ax.margins(x=0.12) if horizontal else ax.margins(y=0.12)
    ax.set_title(title)
    return fig


def volunteer_work(summary: pd.DataFrame, title: str = "") -> plt.Figure:
    """Classifications per volunteer (bars, most active first) with the cumulative share (line).

    ``summary`` is :func:`blgenre.data.crowd.volunteer_summary`'s table.
    """
    fig, ax = plt.subplots(figsize=(7, 3.4))
    x = np.arange(1, len(summary) + 1)
    ax.bar(x, summary["classifications"], color="#4d7ea8")
    ax.set_xlabel("volunteers, most active first")
    ax.set_ylabel("classifications")
    ax2 = ax.twinx()
    ax2.plot(x, 100 * summary["cumulative_share"], color="#b2182b", marker=".")
    ax2.set_ylabel("cumulative share of all classifications (%)", color="#b2182b")
    ax2.set_ylim(0, 105)
    ax.set_title(title)
    return fig


def year_agreement(checks: pd.DataFrame, title: str = "") -> plt.Figure:
    """Catalogue year against the annotator's year, English-language books vs the others.

    ``checks`` is :func:`blgenre.data.audit.row_checks`'s table. Points on the diagonal agree.
    """
    both = checks.dropna(subset=["catalogue_year", "annotator_year"])
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 4), sharex=True, sharey=True)
    for ax, (is_en, name) in zip(axes, ((True, "English"), (False, "other languages")),
                                 strict=True):
        d = both[both["english"] == is_en]
        ax.scatter(d["catalogue_year"], d["annotator_year"], s=6, alpha=0.35,
                   color="#2166ac" if is_en else "#b2182b")
        ax.plot([1780, 1920], [1780, 1920], color="grey", lw=0.8, ls="--")
        ax.set_title(f"{name} (n={len(d):,} rows)")
        ax.set_xlabel("year in the catalogue")
    axes[0].set_ylabel("year entered by the volunteer")
    axes[0].set_xlim(1780, 1920)
    axes[0].set_ylim(1780, 1920)
    fig.suptitle(title)
    return fig


def hist_by_label(frame: pd.DataFrame, column: str, bins=30, title: str = "",
                  xlabel: str = "") -> plt.Figure:
    """Overlaid histograms of ``column`` for Fiction and Non-fiction (share of each class)."""
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    edges = np.histogram_bin_edges(frame[column].dropna(), bins=bins)
    for label, g in frame.groupby("label"):
        ax.hist(g[column].dropna(), bins=edges, alpha=0.55, density=True,
                color=COLORS.get(label, "grey"), label=f"{label} (n={len(g):,})")
    ax.set_xlabel(xlabel or column)
    ax.set_ylabel("density")
    ax.legend()
    ax.set_title(title)
    return fig


def fiction_share(frame: pd.DataFrame, by: str, order: list | None = None,
                  title: str = "") -> plt.Figure:
    """Share of Fiction per value of ``by`` with the number of books written on each bar."""
    g = frame.groupby(by)["label"]
    share = g.apply(lambda s: (s == "Fiction").mean())
    n = g.size()
    if order is not None:
        share, n = share.reindex(order).dropna(), n.reindex(order).dropna()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    rects = ax.bar([str(i) for i in share.index], 100 * share.to_numpy(), color=COLORS["Fiction"])
    ax.bar_label(rects, labels=[f"n={int(v)}" for v in n], fontsize=7, padding=2)
    ax.set_ylabel("% labelled Fiction")
    ax.set_xlabel(by)
    ax.set_ylim(0, 100)
    ax.tick_params(axis="x", rotation=45)
    ax.set_title(title)
    return fig


def show(fig: plt.Figure, name: str):
    """Save ``fig`` like :func:`save`, close it, and return the PNG for a notebook cell to show.

    This module draws with the headless Agg backend, so a ``Figure`` left as a cell's value
    appears only as text in an executed notebook; the returned ``IPython.display.Image`` is
    embedded in the page instead.
    """
    from IPython.display import Image

    save(fig, name)
    plt.close(fig)
    return Image(filename=str(figure_path(f"{name}.png")))

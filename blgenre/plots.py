"""Figures shared by the chapters (matplotlib, saved under ``artifacts/figures``)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # noqa: E402 - headless builds
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .paths import figure_path  # noqa: E402

COLORS = {"Fiction": "#b2182b", "Non-fiction": "#2166ac"}


def save(fig: plt.Figure, name: str) -> plt.Figure:
    """Save ``fig`` as ``artifacts/figures/<name>.png`` and return it for display."""
    fig.tight_layout()
    fig.savefig(figure_path(f"{name}.png"), dpi=110)
    return fig


def confusion(metrics: dict, title: str | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """Confusion matrix (counts) from a metrics dict written by :func:`blgenre.evaluate.evaluate`."""
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

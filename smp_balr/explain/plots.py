"""Plots of SHAP values (PNG files, byte-deterministic for a given seed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from smp_balr.core.plotting import pyplot, save_png

TOP_BAR = 20
BLUE, RED = "#1f77b4", "#d62728"  # BA = 0 / BA = 1 in the plots


def safe_name(name: str) -> str:
    """A file-name-safe version of a class or BA name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)) or "_"


def plot_beeswarm(
    values: np.ndarray,
    x: np.ndarray,
    features: Sequence[str],
    title: str,
    path: Path,
    seed: int,
    max_display: int = 20,
) -> None:
    """Beeswarm-style summary of one class: one row per BA (top ``max_display`` by mean
    |SHAP|), dots at the SHAP values, coloured by the BA's 0/1 value, vertical jitter seeded."""
    plt = pyplot()
    v = np.asarray(values)
    imp = np.abs(v).mean(axis=0)
    order = np.lexsort((np.arange(len(imp)), -imp))[:max_display]
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(order) + 1.5))
    for pos, j in enumerate(order):
        ypos = len(order) - 1 - pos
        jitter = rng.uniform(-0.3, 0.3, size=len(v))
        on = x[:, j] > 0.5
        for mask, colour, text in ((~on, BLUE, "BA = 0"), (on, RED, "BA = 1")):
            ax.scatter(
                v[mask, j],
                ypos + jitter[mask],
                s=8,
                c=colour,
                alpha=0.6,
                linewidths=0,
                label=text if pos == 0 else None,
            )
    ax.set_yticks(range(len(order)))
    ax.set_yticklabels([features[j] for j in order][::-1])
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("SHAP value (effect on class probability)")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def plot_ba_across_classes(
    values: np.ndarray, xcol: np.ndarray, classes: Sequence[str], ba: str, path: Path, seed: int
) -> None:
    """SHAP values of one BA for every class (one strip per class), coloured by its 0/1 value.

    Parameters
    ----------
    values : numpy.ndarray
        (rows, classes) SHAP values of this BA.
    xcol : numpy.ndarray
        (rows,) the BA's values.
    """
    plt = pyplot()
    rng = np.random.default_rng(seed)
    on = np.asarray(xcol) > 0.5
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(classes) + 2), 4))
    for c in range(len(classes)):
        jitter = rng.uniform(-0.25, 0.25, size=len(on))
        for mask, colour, text in ((~on, BLUE, f"{ba} = 0"), (on, RED, f"{ba} = 1")):
            ax.scatter(
                c + jitter[mask],
                values[mask, c],
                s=8,
                c=colour,
                alpha=0.6,
                linewidths=0,
                label=text if c == 0 else None,
            )
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels([str(c) for c in classes])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("class")
    ax.set_ylabel("SHAP value")
    ax.set_title(f"{ba}: SHAP values per class")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def plot_top_bar(importance: pd.DataFrame, path: Path, top: int = TOP_BAR) -> None:
    """Horizontal bar chart of the ``top`` BAs' shares of total mean |SHAP|."""
    plt = pyplot()
    head = importance.head(top)
    fig, ax = plt.subplots(figsize=(6, 0.3 * len(head) + 1.5))
    ax.barh(range(len(head))[::-1], head["share"].to_numpy(), color="#4c72b0")
    ax.set_yticks(range(len(head))[::-1])
    ax.set_yticklabels(head["BA"].tolist())
    ax.set_xlabel("share of total mean |SHAP|")
    ax.set_title(f"top {len(head)} BAs (global importance)")
    fig.tight_layout()
    save_png(fig, path)

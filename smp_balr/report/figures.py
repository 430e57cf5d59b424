"""Figures of the presence report as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DPI = 110


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(
        buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}
    )  # no URL inside
    plt.close(fig)
    return buf.getvalue()


def confusion_png(classes: Sequence[str], counts: np.ndarray, title: str) -> bytes:
    """Row-normalised confusion matrix (rows true, columns predicted) with counts in the cells."""
    counts = np.asarray(counts, dtype=float)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(classes)
    size = 1.2 + 0.75 * n
    fig, ax = plt.subplots(figsize=(size + 1.0, size))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{share[i, j]:.2f}\n({int(counts[i, j])})",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if share[i, j] > 0.6 else "black",
            )
    ax.set_xticks(range(n), classes, rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center")
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    return _png(fig)


def association_png(matrices: Mapping[str, pd.DataFrame], threshold: float) -> bytes:
    """Cramér's V heatmaps side by side (one per unit); cells at or above ``threshold`` outlined."""
    k = len(matrices)
    first = next(iter(matrices.values()))
    n = len(first)
    size = 1.5 + 0.6 * n
    fig, axes = plt.subplots(
        1, k, figsize=(size * k + 2.0, size), squeeze=False, gridspec_kw={"wspace": 0.45}
    )
    im = None
    for ax, (name, mat) in zip(axes[0], matrices.items()):
        vals = mat.to_numpy(dtype=float)
        im = ax.imshow(np.nan_to_num(vals, nan=0.0), cmap="Oranges", vmin=0, vmax=1)
        for i in range(n):
            for j in range(n):
                text = "–" if np.isnan(vals[i, j]) else f"{vals[i, j]:.2f}"
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if np.nan_to_num(vals[i, j]) > 0.6 else "black",
                )
                if i != j and np.isfinite(vals[i, j]) and vals[i, j] >= threshold:
                    ax.add_patch(
                        plt.Rectangle(
                            (j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2
                        )
                    )
        ax.set_xticks(range(n), mat.columns, rotation=45, ha="right")
        ax.set_yticks(range(n), mat.index)
        ax.set_title(f"Cramér's V on {name}", fontsize=10)
    fig.colorbar(im, ax=list(axes[0]), fraction=0.046 / k, pad=0.04)
    return _png(fig)


def shared_png(frame: pd.DataFrame) -> bytes:
    """BA x label heatmap: how many sources (selectors, SHAP top list) name a BA for a label."""
    vals = frame.to_numpy(dtype=float)
    n_ba, n_lab = vals.shape
    fig, ax = plt.subplots(figsize=(1.8 + 0.9 * n_lab, 1.0 + 0.22 * n_ba))
    top = max(1.0, float(vals.max()))
    im = ax.imshow(vals, cmap="Greens", vmin=0, vmax=top, aspect="auto")
    for i in range(n_ba):
        for j in range(n_lab):
            if vals[i, j] > 0:
                ax.text(
                    j,
                    i,
                    str(int(vals[i, j])),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if vals[i, j] > 0.6 * top else "black",
                )
    ax.set_xticks(range(n_lab), frame.columns, rotation=30, ha="right")
    ax.set_yticks(range(n_ba), frame.index, fontsize=7)
    ax.set_title(
        "BAs that matter for more than one label\n(number of sources naming the BA)", fontsize=9
    )
    fig.colorbar(im, ax=ax, fraction=0.08, pad=0.04)
    return _png(fig)


def _finite(value: object) -> float:
    return float(value) if isinstance(value, (int, float)) else float("nan")


def presence_png(rows: Sequence[Mapping]) -> bytes:
    """Chance-normalised balanced accuracy (0 = chance) of the chosen configurations, with CIs."""
    rows = [r for r in rows if np.isfinite(_finite(r.get("ba_norm")))]
    fig, ax = plt.subplots(figsize=(6.5, 0.9 + 0.55 * max(1, len(rows))))
    for i, r in enumerate(rows):
        color = "#1b7837" if r["verdict"] == "present" else "#777777"
        ax.plot(
            [r["ba_norm_ci_low"], r["ba_norm_ci_high"]],
            [i, i],
            color=color,
            linewidth=3,
            solid_capstyle="butt",
        )
        ax.plot(r["ba_norm"], i, "o", color=color, markersize=8)
    ax.axvline(0.0, color="#b2182b", linewidth=2)
    ax.set_yticks(range(len(rows)), [r["label"] for r in rows])
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.invert_yaxis()
    low = min([0.0] + [float(r["ba_norm_ci_low"]) for r in rows])
    ax.set_xlim(min(-0.1, low - 0.05), 1)
    ax.set_xlabel("normalised balanced accuracy of the chosen configuration (0: chance)")
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color="#1b7837", marker="o", linewidth=3, label="present: BA, 95% interval"),
        Line2D([], [], color="#777777", marker="o", linewidth=3, label="not shown"),
        Line2D([], [], color="#b2182b", linewidth=2, label="chance"),
    ]
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.28),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    return _png(fig)


def effects_png(matrix: pd.DataFrame, limit: int = 60) -> bytes:
    """Heatmap of the associated BAs' effects (frequency differences) across labels and classes."""
    frame = matrix
    if len(frame) > limit:  # the BAs with the largest effect somewhere
        frame = frame.loc[frame.abs().max(axis=1).sort_values(ascending=False).index[:limit]]
        frame = frame.loc[
            sorted(
                frame.index, key=lambda b: (int(b[2:]) if str(b)[2:].isdigit() else 10**9, str(b))
            )
        ]
    n_ba, n_col = frame.shape
    fig, ax = plt.subplots(figsize=(1.6 + 0.9 * n_col, 1.2 + 0.16 * n_ba))
    values = np.ma.masked_invalid(frame.to_numpy(dtype=float))
    im = ax.imshow(values, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(n_col), frame.columns, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(n_ba), frame.index, fontsize=6)
    ax.set_title("associated BAs: frequency in the class minus in the others", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.08, pad=0.04)
    return _png(fig)

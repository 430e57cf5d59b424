"""Summaries of SHAP values: per-class tables, global importance, the top BAs."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from smp_balr.core.errors import UserError

DEFAULT_N_BA_PLOTS = 4


def shap_table(
    values: np.ndarray, sample: pd.DataFrame, label: str, features: Sequence[str]
) -> pd.DataFrame:
    """One class's SHAP values as a table: ``Sample_ID, FileName, True_Label, <BA...>``.

    Parameters
    ----------
    values : numpy.ndarray
        (rows, features) SHAP values for one class.
    sample : pandas.DataFrame
        The explained rows, with a ``Sample_ID`` column, ``FileName`` and ``label``.
    """
    head = pd.DataFrame(
        {
            "Sample_ID": sample["Sample_ID"].to_numpy(),
            "FileName": sample["FileName"].astype(str).to_numpy(),
            "True_Label": sample[label].astype(str).to_numpy(),
        }
    )
    return pd.concat([head, pd.DataFrame(values, columns=list(features))], axis=1)


def class_summary(values: np.ndarray, features: Sequence[str]) -> pd.DataFrame:
    """Per-BA summary of one class's SHAP values.

    Parameters
    ----------
    values : numpy.ndarray
        (rows, features) SHAP values for one class.
    features : sequence of str
        BA names.

    Returns
    -------
    pandas.DataFrame
        ``BA, mean_positive, n_positive, mean_negative, n_negative, dominant``:
        the mean over the rows with a positive (negative) value, 0 when there are none;
        ``dominant`` is whichever of the two means has the larger magnitude (the positive
        one on a tie). Sorted by ``|dominant|`` descending, then BA order.
    """
    v = np.asarray(values, dtype=np.float64)
    pos, neg = v > 0, v < 0
    n_pos, n_neg = pos.sum(axis=0), neg.sum(axis=0)
    mean_pos = np.divide(
        np.where(pos, v, 0.0).sum(axis=0), n_pos, out=np.zeros(v.shape[1]), where=n_pos > 0
    )
    mean_neg = np.divide(
        np.where(neg, v, 0.0).sum(axis=0), n_neg, out=np.zeros(v.shape[1]), where=n_neg > 0
    )
    dominant = np.where(np.abs(mean_pos) >= np.abs(mean_neg), mean_pos, mean_neg)
    df = pd.DataFrame(
        {
            "BA": list(features),
            "mean_positive": mean_pos,
            "n_positive": n_pos,
            "mean_negative": mean_neg,
            "n_negative": n_neg,
            "dominant": dominant,
        }
    )
    order = np.lexsort((np.arange(len(df)), -np.abs(dominant)))
    return df.iloc[order].reset_index(drop=True)


def global_importance(values: np.ndarray, features: Sequence[str]) -> pd.DataFrame:
    """Mean |SHAP| over rows and classes for every BA, with its share of the total.

    Returns
    -------
    pandas.DataFrame
        ``rank, BA, importance, share, cumulative_share`` sorted by importance
        descending (ties by BA order); rank starts at 1.
    """
    v = np.asarray(values, dtype=np.float64)
    imp = np.abs(v).mean(axis=(0, 2)) if v.size else np.zeros(len(features))
    total = imp.sum()
    share = imp / total if total > 0 else np.zeros_like(imp)
    order = np.lexsort((np.arange(len(imp)), -imp))
    df = pd.DataFrame(
        {"BA": np.asarray(features)[order], "importance": imp[order], "share": share[order]}
    )
    df["cumulative_share"] = df["share"].cumsum()
    df.insert(0, "rank", np.arange(1, len(df) + 1))
    return df


def top_metrics(importance: pd.DataFrame, truth: Sequence[str] | None = None) -> dict[str, Any]:
    """Top-5 / top-10 BAs with their summed shares, and how many of the top 10 are planted.

    Parameters
    ----------
    importance : pandas.DataFrame
        From :func:`global_importance`.
    truth : sequence of str, optional
        Planted BAs for the label (demo ground truth); None when unknown.
    """
    out: dict[str, Any] = {}
    for k in (5, 10):
        top = importance.head(k)
        out[f"top{k}"] = top["BA"].tolist()
        out[f"top{k}_share"] = round(float(top["share"].sum()), 6)
    out["n_top10_in_truth"] = (
        None if truth is None else int(len(set(out["top10"]) & set(map(str, truth))))
    )
    return out


def check_plot_bas(requested: Sequence[str], features: Sequence[str]) -> None:
    """Raise a :class:`UserError` naming the BAs of ``requested`` (``explain.ba``) not in the model.

    ``features`` are the model's input BAs.
    """
    valid = [str(f) for f in features]
    bad = [str(b) for b in requested if str(b) not in set(valid)]
    if bad:
        shown = ", ".join(valid[:30]) + (f", ... ({len(valid)} in all)" if len(valid) > 30 else "")
        raise UserError(
            f"explain.ba lists {', '.join(bad)}, not among the model's input BAs; "
            f"use BAs from: {shown}"
        )


def choose_plot_bas(
    requested: Sequence[str] | None, features: Sequence[str], importance: pd.DataFrame
) -> list[str]:
    """The BAs to plot across classes: ``requested`` (checked) or the top 4 by importance."""
    if not requested:
        return importance["BA"].head(DEFAULT_N_BA_PLOTS).tolist()
    check_plot_bas(requested, features)
    return list(dict.fromkeys(str(b) for b in requested))

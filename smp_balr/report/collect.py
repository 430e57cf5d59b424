"""Experiment records from ``dvc exp show --json``: parameters, metrics, status and error line."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

PARAMS_FILE = "params.yaml"
TRAIN = "metrics/train.json"
TEST = "metrics/test.json"
EXPLAIN = "metrics/explain.json"
# training-side scores, in order of preference: the uniform key first, then the model's own
SELECTION_KEYS = ("selection_score", "cv_score", "validation_score")
CONFIG_KEYS = ("features", "model", "balance")
RECORD_COLUMNS = ["name", "rev", "status", "timestamp", "label", "features", "model", "balance", "seed",
                  "selection_score", "selection_source", "chance", "balanced_accuracy", "ci_low", "ci_high",
                  "p_value", "top5_share", "n_test_speakers", "error"]


@dataclass
class Experiment:
    """One experiment as DVC shows it.

    Attributes
    ----------
    name, rev, timestamp : str
        Experiment name, commit and time.
    status : str
        ``success``, ``failed``, ``running`` or ``queued``.
    params : dict
        The experiment's params.yaml.
    metrics : dict
        Metrics file -> content (empty unless the experiment succeeded).
    log_path : str or None
        The queue's log of the run, when DVC still has it.
    error : str or None
        The error line of a failed experiment (filled by :func:`attach_errors`).
    """

    name: str
    rev: str
    status: str
    timestamp: str
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    log_path: str | None = None
    error: str | None = None


def _data(node: Any) -> dict[str, Any]:
    if isinstance(node, dict) and isinstance(node.get("data"), dict):
        return node["data"]
    return {}


def parse_exp_show(shown: Sequence[Mapping[str, Any]]) -> list[Experiment]:
    """The experiments (not the workspace, not the baselines) of ``dvc exp show --json`` output.

    Parameters
    ----------
    shown : sequence of dict
        The parsed JSON: one entry per baseline, each with its ``experiments``.

    Returns
    -------
    list of Experiment
        Failed experiments keep their parameters and get no metrics (DVC shows the
        baseline's metrics for them, which are not theirs).
    """
    out: list[Experiment] = []
    for baseline in shown:
        if baseline.get("rev") == "workspace":
            continue
        for exp in baseline.get("experiments") or []:
            revs = exp.get("revs") or []
            if not revs:
                continue
            rev = revs[0]
            data = rev.get("data") or {}
            executor = exp.get("executor") or {}
            state = str(executor.get("state") or "")
            if rev.get("error") or state == "failed":
                status = "failed"
            elif state in ("queued", "running"):
                status = state
            else:
                status = "success"
            params = _data((data.get("params") or {}).get(PARAMS_FILE))
            metrics = {} if status != "success" else {k: _data(v) for k, v in (data.get("metrics") or {}).items()}
            local = executor.get("local") or {}
            out.append(Experiment(
                name=str(exp.get("name") or rev.get("name") or rev.get("rev", "")[:7]),
                rev=str(rev.get("rev", "")), status=status, timestamp=str(data.get("timestamp") or ""),
                params=params, metrics=metrics, log_path=local.get("log"),
            ))
    return out


def attach_errors(experiments: Sequence[Experiment], read_log: Callable[[Experiment], str],
                  error_line: Callable[[str], str]) -> None:
    """Fill ``error`` of every failed experiment from its log (``read_log`` returns the log text)."""
    for exp in experiments:
        if exp.status == "failed" and exp.error is None:
            try:
                exp.error = error_line(read_log(exp))
            except OSError as err:
                exp.error = f"log not available ({err.strerror or err})"


def selection_score(train: Mapping[str, Any]) -> tuple[float | None, str | None]:
    """The training-side score of ``metrics/train.json`` and the key it came from.

    ``selection_score`` first, then ``cv_score`` (dt: speaker-grouped CV), then
    ``validation_score`` (mlp: held-out training speakers). Never a test number.
    """
    for key in SELECTION_KEYS:
        value = train.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value), key
    return None, None


def _num(node: Any, *keys: str) -> float:
    for key in keys:
        if not isinstance(node, Mapping) or key not in node:
            return math.nan
        node = node[key]
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else math.nan


def records(experiments: Sequence[Experiment]) -> pd.DataFrame:
    """One row per experiment with the swept parameters and the figures the report needs.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`RECORD_COLUMNS`; figures are NaN for experiments that did not succeed.
    """
    rows = []
    for exp in experiments:
        p = exp.params
        train, test = exp.metrics.get(TRAIN, {}), exp.metrics.get(TEST, {})
        explain = exp.metrics.get(EXPLAIN, {})
        score, source = selection_score(train)
        rows.append({
            "name": exp.name, "rev": exp.rev, "status": exp.status, "timestamp": exp.timestamp,
            "label": str(p.get("label", "")),
            "features": str((p.get("features") or {}).get("method", "")),
            "model": str((p.get("model") or {}).get("method", "")),
            "balance": (p.get("train") or {}).get("balance"),
            "seed": p.get("seed"),
            "selection_score": math.nan if score is None else score, "selection_source": source,
            "chance": _num(test, "chance", "balanced_accuracy"),
            "balanced_accuracy": _num(test, "balanced_accuracy"),
            "ci_low": _num(test, "bootstrap", "ci_low"), "ci_high": _num(test, "bootstrap", "ci_high"),
            "p_value": _num(test, "permutation", "p_value"),
            "top5_share": _num(explain, "top5_share"),
            "n_test_speakers": _num(test, "n_speakers"),
            "error": exp.error,
        })
    return pd.DataFrame(rows, columns=RECORD_COLUMNS)


def latest_per_configuration(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep one experiment per (label, configuration, seed): the most recent (a rerun replaces a run)."""
    if frame.empty:
        return frame
    key = ["label", *CONFIG_KEYS, "seed"]
    ordered = frame.assign(_b=frame["balance"].astype(str), _s=frame["seed"].astype(str))
    ordered = ordered.sort_values("timestamp", kind="stable")
    keep = ordered.drop_duplicates(subset=["label", "features", "model", "_b", "_s"], keep="last")
    return keep.drop(columns=["_b", "_s"]).sort_values(key, key=lambda c: c.astype(str), kind="stable").reset_index(drop=True)


def read_log_file(exp: Experiment) -> str:
    """The queue log text of ``exp`` from the file DVC names, if it still exists."""
    if exp.log_path and Path(exp.log_path).is_file():
        return Path(exp.log_path).read_text(errors="replace")
    raise FileNotFoundError(2, "queue log removed", exp.log_path)


#: the compact experiments view (``make exp``): column, header, width, format
TABLE_COLUMNS = (("name", "experiment", 14, "s"), ("label", "label", 10, "s"), ("features", "feats", 6, "s"),
                 ("model", "model", 6, "s"), ("balance", "bal", 3, "s"), ("selection_score", "train", 5, ".3f"),
                 ("balanced_accuracy", "b.acc", 5, ".3f"), ("ci_low", "ci_lo", 5, ".3f"),
                 ("p_value", "p", 6, ".4f"), ("top5_share", "top5", 5, ".3f"))


def format_table(frame: pd.DataFrame) -> str:
    """The experiments as an 80-column text table (``make exp``; a failed one is marked ``!``): settings, training-side score,
    test balanced accuracy with its interval's lower end, permutation p, SHAP top-5 share."""
    def cell(value: Any, width: int, fmt: str) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            text = "-"
        else:
            text = format(value, fmt) if fmt != "s" else str(value)
        return text[:width].ljust(width) if fmt == "s" else text.rjust(width)

    lines = [" ".join(h.ljust(w) if f == "s" else h.rjust(w) for _, h, w, f in TABLE_COLUMNS)]
    for row in frame.to_dict("records"):
        shown = dict(row, name=row["name"] if row["status"] == "success" else f"!{row['name']}")
        lines.append(" ".join(cell(shown[c], w, f) for c, _, w, f in TABLE_COLUMNS))
    return "\n".join(line.rstrip() for line in lines)

"""Read the sweep's experiments and their outputs, compute the report, write the documents."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from smp_balr import paths
from smp_balr.errors import UserError
from smp_balr.params import as_float, as_int, check_keys, load_params
from smp_balr.report import bas, choose, collect, confounds, figures
from smp_balr.report.document import PresenceReport, write_documents
from smp_balr.sweep import error_line, label_columns

log = logging.getLogger(__name__)

REPORT_KEYS = ("alpha", "confound_v", "min_speakers", "top_shap")
DEFAULTS = {"alpha": 0.05, "confound_v": 0.9, "min_speakers": 5, "top_shap": 10}


def report_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``report:`` block of params.yaml, validated, with defaults."""
    block = {**DEFAULTS, **check_keys(params.get("report"), "report", REPORT_KEYS)}
    return {"alpha": as_float(block["alpha"], "report.alpha", 1e-6, 0.5),
            "confound_v": as_float(block["confound_v"], "report.confound_v", 0.0, 1.0),
            "min_speakers": as_int(block["min_speakers"], "report.min_speakers", minimum=1),
            "top_shap": as_int(block["top_shap"], "report.top_shap", minimum=1)}


def exp_show(project: Path) -> list[dict[str, Any]]:
    """``dvc exp show --json`` of ``project`` (every experiment of the current commit)."""
    proc = subprocess.run(["dvc", "exp", "show", "--json"], cwd=project, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"`dvc exp show --json` failed ({error_line(proc.stdout + proc.stderr)}); run it in the project root")
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise UserError("`dvc exp show --json` printed no JSON; upgrade DVC to the version of requirements.lock") from None


def _queue_log(project: Path) -> Callable[[collect.Experiment], str]:
    def read(exp: collect.Experiment) -> str:
        try:
            return collect.read_log_file(exp)
        except FileNotFoundError:
            proc = subprocess.run(["dvc", "queue", "logs", exp.name], cwd=project, capture_output=True, text=True)
            return proc.stdout + proc.stderr
    return read


class RevFiles:
    """Files of experiment commits read through ``dvc.api`` (one file system per commit, reused)."""

    def __init__(self, project: Path):
        self.project = project
        self._fs: dict[str, Any] = {}

    def fs(self, rev: str):
        import dvc.api

        if rev not in self._fs:
            self._fs[rev] = dvc.api.DVCFileSystem(str(self.project), rev=rev)
        return self._fs[rev]

    def text(self, rev: str, path: str | Path) -> str | None:
        try:
            return self.fs(rev).read_text(str(path))
        except (FileNotFoundError, OSError) as err:
            log.warning("%s not readable at %s: %s", path, rev[:7], err)
            return None

    def csv(self, rev: str, path: str | Path, **kwargs) -> pd.DataFrame | None:
        try:
            with self.fs(rev).open(str(path), "r") as f:
                return pd.read_csv(f, **kwargs)
        except (FileNotFoundError, OSError) as err:
            log.warning("%s not readable at %s: %s", path, rev[:7], err)
            return None


def _features(text: str | None) -> list[str]:
    if not text or not text.strip():
        return []
    from io import StringIO

    frame = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
    return [f.strip() for f in frame.get("Feature", pd.Series(dtype=str)) if f.strip()]


def confusion_counts(predictions: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Classes and counts (rows true, columns predicted) from a predictions table (``true``, ``predicted``)."""
    true, pred = predictions["true"].astype(str), predictions["predicted"].astype(str)
    classes = sorted(set(true) | set(pred))
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(counts, (true.map(index).to_numpy(), pred.map(index).to_numpy()), 1)
    return classes, counts


NEEDED = {collect.TEST: ("balanced_accuracy", "permutation", "bootstrap", "chance"),
          collect.TRAIN: collect.SELECTION_KEYS}


def complete_metrics(exps: Sequence[collect.Experiment], files: "RevFiles") -> None:
    """Read a successful experiment's metrics file itself when ``dvc exp show`` lacks what the report needs.

    DVC shows numbers only; a metrics file slimmed for ``dvc exp show`` may keep some figures
    in the file under other names. Only the files lacking a needed key are read.
    """
    todo = [(e, f) for e in exps if e.status == "success" for f, keys in NEEDED.items()
            if not (set(keys) & set(e.metrics.get(f) or {})) or
            (f == collect.TEST and not set(keys) <= set(e.metrics.get(f) or {}))]
    for exp, name in tqdm(todo, desc="metrics files", unit="file", disable=not todo):
        text = files.text(exp.rev, name)
        if text:
            try:
                exp.metrics[name] = {**json.loads(text), **(exp.metrics.get(name) or {})}
            except json.JSONDecodeError:
                log.warning("%s of %s is not JSON", name, exp.name)


def shap_top_list(files: "RevFiles", exp: collect.Experiment, n: int) -> list[str]:
    """The chosen model's top-``n`` SHAP BAs: ``metrics/explain_top20.csv``, else ``top10`` of ``metrics/explain.json``.

    DVC leaves lists out of the metrics it shows, so both are read from the experiment's files.
    """
    frame = files.csv(exp.rev, paths.EXPLAIN_TOP, dtype={"BA": str})
    if frame is not None and "BA" in frame.columns and len(frame):
        if "share" in frame.columns:  # BAs the model never uses (share 0) are not "top" BAs
            frame = frame[pd.to_numeric(frame["share"], errors="coerce").fillna(0) > 0]
        return frame["BA"].astype(str).head(n).tolist()
    text = files.text(exp.rev, paths.EXPLAIN_METRICS)
    try:
        top = (json.loads(text) if text else {}).get("top10") or []
    except json.JSONDecodeError:
        top = []
    return [str(b) for b in top][:n]


def _class_filter(params: Mapping[str, Any], label: str) -> list[str] | None:
    keep = (params.get("classes") or {}).get(label)
    return None if keep is None else [str(k) for k in keep]


def build_report(project: str | Path = ".", out_dir: str | Path = "reports",
                 shown: Sequence[Mapping[str, Any]] | None = None) -> tuple[Path, Path]:
    """Collect the experiments of ``project`` and write ``<out_dir>/presence.md`` and ``presence.html``.

    Parameters
    ----------
    project : str or Path
        Project root (a git + DVC repository holding the sweep's experiments).
    out_dir : str or Path
        Output folder, relative to ``project`` when relative.
    shown : sequence, optional
        Parsed ``dvc exp show --json`` output (read from DVC when None).
    """
    t0 = time.perf_counter()
    project = Path(project).resolve()
    params = load_params(project / "params.yaml")
    cfg = report_settings(params)
    exps = collect.parse_exp_show(shown if shown is not None else exp_show(project))
    collect.attach_errors(exps, _queue_log(project), error_line)
    files = RevFiles(project)
    complete_metrics(exps, files)
    frame = collect.latest_per_configuration(collect.records(exps))
    frame = frame[frame["status"].isin(["success", "failed"])].reset_index(drop=True)
    if frame.empty:
        raise UserError("no finished experiment found for the current commit; run `make sweep` first")
    by_name = {e.name: e for e in exps}
    order = [str(x) for x in params.get("labels") or []]
    labels = sorted(frame["label"].unique(), key=lambda lab: (order.index(lab) if lab in order else len(order), lab))
    log.info("%d experiments (%d failed) over %d label(s)", len(frame), int((frame["status"] == "failed").sum()), len(labels))

    presence, selected, agreement, shap_top, confusion, evidence = [], {}, {}, {}, {}, {}
    figs: dict[str, bytes] = {}
    for label in tqdm(labels, desc="labels", unit="label"):
        entry = {"label": label, **choose.presence_row(frame[frame["label"] == label], cfg["alpha"])}
        entry["n_seeds"] = len(entry.get("seeds", [])) or 1
        entry["warnings"] = []
        if entry["n_failed"]:
            entry["warnings"].append(f"{entry['n_failed']} experiment(s) failed (see the table of every experiment)")
        presence.append(entry)
        if entry["chosen"] is None:
            entry["warnings"].append("no configuration has a training-side score: nothing chosen")
            continue
        exp = by_name[entry["names"][0]]  # first seed of the chosen configuration
        sources: dict[str, list[str]] = {}
        selectors = list((exp.params.get("selection") or {}).get("selectors") or []) + ["common"]
        for method in selectors:
            sources[method] = _features(files.text(exp.rev, paths.features_file(label, method)))
        selected[label] = sources
        agreement[label] = bas.agreement_matrix(sources)
        top = shap_top_list(files, exp, cfg["top_shap"])
        shap_top[label] = top
        evidence[label] = {**{m: b for m, b in sources.items() if m != "all"}, "shap": top}
        pred = files.csv(exp.rev, paths.PREDICTIONS, dtype=str, keep_default_na=False)
        if pred is not None and len(pred):
            classes, counts = confusion_counts(pred)
            confusion[label] = (classes, counts)
            title = f"{label}: {choose.config_label(entry['chosen'])}"
            figs[f"confusion_{label}"] = figures.confusion_png(classes, counts, title)

    # confounds from the formatted tables' label columns (read through the chosen experiment's commit)
    ref = next((by_name[e["names"][0]] for e in presence if e.get("names")), None)
    association, pairs, levels, class_counts = {}, [], {}, {}
    if ref is not None:
        name = str((ref.params.get("data") or {}).get("name", "demo"))
        header = files.csv(ref.rev, paths.train_table(name), nrows=0)
        all_labels = label_columns(header.columns) if header is not None else []
        cols = ["Speaker", *all_labels]
        read = lambda p: files.csv(ref.rev, p, usecols=cols, dtype=str, keep_default_na=False, na_values=[""])  # noqa: E731
        train, test = read(paths.train_table(name)), read(paths.test_table(name))
        if train is not None and test is not None and len(all_labels) > 1:
            both = pd.concat([train, test], ignore_index=True)
            association = {"utterances": confounds.association_matrix(both, all_labels, "utterance"),
                           "speakers": confounds.association_matrix(both, all_labels, "speaker")}
            checks = dict(association)
            for split, part in (("training utterances", train), ("test utterances", test)):
                checks[split] = confounds.association_matrix(part, all_labels, "utterance")
            for split, part in (("training speakers", train), ("test speakers", test)):
                checks[split] = confounds.association_matrix(part, all_labels, "speaker")
            pairs = confounds.confound_pairs(checks, cfg["confound_v"])
            figs["association"] = figures.association_png(association, cfg["confound_v"])
        if train is not None and test is not None:
            for label in labels:
                levels[label] = confounds.label_level(pd.concat([train, test]), label)
                counts = confounds.class_speakers(train, test, label, _class_filter(ref.params, label))
                class_counts[label] = counts
                few = confounds.few_speaker_classes(counts, cfg["min_speakers"])
                entry = next(e for e in presence if e["label"] == label)
                entry["level"] = levels[label]
                if few:
                    entry["warnings"].append(
                        f"class(es) {', '.join(few)} rest on fewer than {cfg['min_speakers']} distinct training or test "
                        "speakers: conclusions about them are weak")
                for c in pairs:
                    if label in (c["a"], c["b"]):
                        other = c["b"] if c["a"] == label else c["a"]
                        entry["warnings"].append(
                            f"nearly determined by {other} (Cramér's V {c['v']:.2f} on {c['where']}): "
                            f"'present' may mean that {other} is present")
    shared = bas.shared_bas(evidence) if evidence else pd.DataFrame()
    if len(shared):
        figs["shared"] = figures.shared_png(shared)
    if any(np.isfinite(e.get("ba_mean", math.nan)) for e in presence):
        figs["presence"] = figures.presence_png(presence)

    notes = ["Figures come from the experiments' own outputs (dvc exp show, dvc.api); no model was re-run.",
             "Selection score: metrics/train.json selection_score, else cv_score (dt), else validation_score (mlp)."]
    if any(e["n_seeds"] > 1 for e in presence):
        notes.append("With several seeds: mean ± standard deviation across seeds; the interval spans the seeds' "
                     "intervals; the p-value is the largest of the seeds'; BAs and confusion come from the first seed.")
    rep = PresenceReport(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), alpha=cfg["alpha"],
        confound_v=cfg["confound_v"], min_speakers=cfg["min_speakers"], presence=presence, experiments=frame,
        association=association, confounds=pairs, levels=levels, class_counts=class_counts, selected=selected,
        agreement=agreement, shap_top=shap_top, shared=shared, confusion=confusion, figures=figs, notes=notes)
    out = Path(out_dir) if Path(out_dir).is_absolute() else project / out_dir
    md, page = write_documents(rep, out)
    log.info("wrote %s and %s in %.1f s", md, page, time.perf_counter() - t0)
    for e in presence:
        log.info("%-12s %s", e["label"], e.get("verdict"))
    return md, page

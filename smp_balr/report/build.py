"""Read the study stages' outputs, compute the presence table, write the documents and metrics."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from smp_balr.core import paths
from smp_balr.core.errors import UserError
from smp_balr.core.settings import Settings
from smp_balr.data.tables import ID_COLUMNS, ba_columns, read_features
from smp_balr.evaluation.conditional import associated_pairs, beyond_entries
from smp_balr.evaluation.verdict import NO_RESULT, rule_sentence, table_verdicts
from smp_balr.report import bas, confounds, figures
from smp_balr.report.document import PresenceReport, write_documents
from smp_balr.selection.association import association_lines, effect_matrix
from smp_balr.study.grid import CONFIG_KEYS, EFFECT_KEYS, SUMMARY_KEYS, config_text

log = logging.getLogger(__name__)


def _read_json(path: Path, label: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"{path} not found: the study of '{label}' has not run; run `dvc repro study@{label}`"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"{path} is not valid JSON; rerun `dvc repro -f study@{label}`") from None


def _read_csv(path: Path, label: str, **kwargs: Any) -> pd.DataFrame:
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise UserError(
            f"{path} not found: the study of '{label}' has not run; run `dvc repro study@{label}`"
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError):
        raise UserError(
            f"{path} is not a readable CSV; rerun `dvc repro -f study@{label}`"
        ) from None


def read_study(label: str) -> dict[str, Any]:
    """One label's study outputs: ``chosen`` (dict), ``results``, ``predictions``, SHAP."""
    folder = paths.study_dir(label)
    out = {
        "chosen": _read_json(folder / paths.STUDY_CHOSEN, label),
        "results": _read_csv(
            folder / paths.STUDY_RESULTS, label, keep_default_na=False, na_values=[""]
        ),
        "predictions": _read_csv(
            folder / paths.STUDY_PREDICTIONS,
            label,
            dtype={"true": str, "predicted": str},
            keep_default_na=False,
        ),
    }
    importance = folder / paths.STUDY_EXPLAIN / "importance.csv"
    out["importance"] = (
        _read_csv(importance, label, dtype={"BA": str}) if importance.is_file() else None
    )
    return out


def confusion_counts(predictions: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """Classes and counts (rows true, columns predicted) from a table of ``true``, ``predicted``."""
    true, pred = predictions["true"].astype(str), predictions["predicted"].astype(str)
    classes = sorted(set(true) | set(pred))
    index = {c: i for i, c in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=int)
    np.add.at(counts, (true.map(index).to_numpy(), pred.map(index).to_numpy()), 1)
    return classes, counts


def shap_top(importance: pd.DataFrame | None, n: int) -> list[str]:
    """The chosen model's top-``n`` BAs by SHAP share (BAs it never uses left out)."""
    if importance is None or "BA" not in importance.columns:
        return []
    frame = importance
    if "share" in frame.columns:
        frame = frame[pd.to_numeric(frame["share"], errors="coerce").fillna(0) > 0]
    return frame["BA"].astype(str).head(n).tolist()


def presence_entry(label: str, study: dict[str, Any]) -> dict[str, Any]:
    """The presence-table entry of one label before the table-level correction."""
    chosen = study["chosen"]
    results = study["results"]
    entry: dict[str, Any] = {
        "label": label,
        "n_configurations": chosen.get("n_configurations", 0),
        "n_failed": chosen.get("n_failed", 0),
        "warnings": [],
    }
    if chosen.get("chosen") is None:
        return {**entry, "chosen": None, "p_value": math.nan}
    entry["chosen"] = tuple(chosen["chosen"][k] for k in CONFIG_KEYS)
    for key in SUMMARY_KEYS:
        value = chosen.get(key)
        entry[key] = math.nan if value is None else float(value)
    entry["seeds"] = chosen.get("seeds", [])
    entry["n_seeds"] = max(1, len(entry["seeds"]))
    entry["scheme"] = chosen.get("scheme")
    if entry["n_failed"]:
        entry["warnings"].append(
            f"{entry['n_failed']} of {len(results)} runs failed (see the table of every run)"
        )
    return entry


def read_association(
    labels: Sequence[str],
) -> tuple[dict[str, pd.DataFrame], dict[str, Any] | None]:
    """Per label its per-BA association table (``associate@<label>``); the BA profile summary."""
    tables = {}
    for label in labels:
        path = paths.association_table(label)
        if not path.is_file():
            raise UserError(f"{path} not found; run `dvc repro associate@{label}`")
        tables[label] = _read_csv(path, label, dtype={"BA": str, "class": str, "versus": str})
    profile = None
    if paths.BA_PROFILE_INFO.is_file():
        profile = _read_json(paths.BA_PROFILE_INFO, "profile")
    return tables, profile


def _selected(label: str, selectors: Sequence[str]) -> dict[str, list[str]]:
    out = {}
    for method in [*selectors, "common"]:
        path = paths.features_file(label, method)
        out[method] = read_features(path, method, allow_empty=True) if path.is_file() else []
    return out


def _label_tables(settings: Settings) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """The label columns (and Speaker) of the formatted train and test tables."""
    name = settings.data.name
    train_path, test_path = paths.train_table(name), paths.test_table(name)
    try:
        header = pd.read_csv(train_path, nrows=0).columns
    except FileNotFoundError:
        raise UserError(f"{train_path} not found; run `dvc repro format`") from None
    skip = set(ba_columns(pd.DataFrame(columns=header))) | set(ID_COLUMNS)
    labels = [c for c in header if c not in skip]

    def read(path: Path) -> pd.DataFrame:
        return pd.read_csv(
            path,
            usecols=["FileName", "Speaker", *labels],
            dtype=str,
            keep_default_na=False,
            na_values=[""],
        )

    return read(train_path), read(test_path), labels


def _confounds(
    settings: Settings, presence: list[dict[str, Any]], figs: dict[str, bytes]
) -> dict[str, Any]:
    cfg = settings.report
    train, test, all_labels = _label_tables(settings)
    out: dict[str, Any] = {
        "association": {},
        "pairs": [],
        "levels": {},
        "class_counts": {},
        "train": train,
    }
    if len(all_labels) > 1:
        both = pd.concat([train, test], ignore_index=True)
        out["association"] = {
            "utterances": confounds.association_matrix(both, all_labels, "utterance"),
            "speakers": confounds.association_matrix(both, all_labels, "speaker"),
        }
        checks = dict(out["association"])
        for split, part in (("training utterances", train), ("test utterances", test)):
            checks[split] = confounds.association_matrix(part, all_labels, "utterance")
        for split, part in (("training speakers", train), ("test speakers", test)):
            checks[split] = confounds.association_matrix(part, all_labels, "speaker")
        out["pairs"] = confounds.confound_pairs(checks, cfg.confound_v)
        figs["association"] = figures.association_png(out["association"], cfg.confound_v)
    for entry in presence:
        label = entry["label"]
        if label not in all_labels:
            continue
        out["levels"][label] = entry["level"] = confounds.label_level(
            pd.concat([train, test]), label
        )
        counts = confounds.class_speakers(train, test, label, settings.class_filter(label))
        out["class_counts"][label] = counts
        few = confounds.few_speaker_classes(counts, cfg.min_speakers)
        if few:
            entry["warnings"].append(
                f"class(es) {', '.join(few)} rest on fewer than {cfg.min_speakers} distinct "
                "training or test speakers: conclusions about them are weak"
            )
        for c in out["pairs"]:
            if label in (c["a"], c["b"]):
                other = c["b"] if c["a"] == label else c["a"]
                entry["warnings"].append(
                    f"nearly determined by {other} (Cramér's V {c['v']:.2f} on {c['where']}): "
                    f"'present' may mean that {other} is present"
                )
    out["test"] = test
    return out


def beyond(
    settings: Settings,
    presence: list[dict[str, Any]],
    studies: dict[str, dict[str, Any]],
    test: pd.DataFrame,
    pairs: list[dict[str, Any]],
) -> None:
    """Test each label's presence beyond every label associated with it (``report.beyond_v``).

    The chosen model's test predictions are scored within the strata of the other label,
    with labels permuted within strata (and within speakers where the label varies within
    them): ``present beyond``, ``not shown beyond``, or ``cannot be separated`` when no
    stratum has two classes with ``report.beyond_min_speakers`` test speakers each.
    """
    by_file = test.drop_duplicates("FileName").set_index("FileName")
    for entry in presence:
        label, others = entry["label"], {}
        for pair in pairs:
            if label in (pair["a"], pair["b"]):
                other = pair["b"] if pair["a"] == label else pair["a"]
                others[other] = pair["v"]
        pred = studies[label]["predictions"]
        entry["beyond"] = {}
        if not others or not len(pred):
            continue
        rows = by_file.reindex(pred["FileName"].astype(str))
        values = {o: rows[o].fillna("").astype(str).to_numpy() for o in others}
        entry["beyond"] = beyond_entries(
            pred["true"].astype(str).to_numpy(),
            pred["predicted"].astype(str).to_numpy(),
            values,
            pred["Speaker"].astype(str).to_numpy(),
            settings.test.n_permutations,
            settings.seed,
            settings.report.beyond_min_speakers,
            settings.report.alpha,
        )
        for o, v in others.items():
            entry["beyond"][o]["cramers_v"] = v


def presence_metrics(presence: Sequence[dict[str, Any]], settings: Settings) -> dict[str, Any]:
    """``metrics/presence.json`` (a DVC metric): per label its verdict, configuration, figures."""
    keys = (
        "chance",
        "ba_mean",
        "ci_low",
        "ci_high",
        "p_value",
        "p_adjusted",
        *EFFECT_KEYS,
        "selection_mean",
    )
    out: dict[str, Any] = {
        "alpha": settings.report.alpha,
        "correction": settings.report.correction,
        "n_labels": len(presence),
        "n_present": sum(e["verdict"] == "present" for e in presence),
    }
    for e in presence:
        item: dict[str, Any] = {
            "verdict": e["verdict"],
            "chosen": None if e.get("chosen") is None else config_text(e["chosen"]),
        }
        for k in keys:
            v = e.get(k)
            item["balanced_accuracy" if k == "ba_mean" else k] = (
                None if v is None or (isinstance(v, float) and not math.isfinite(v)) else v
            )
        item["beyond"] = e.get("beyond", {})
        out[e["label"]] = item
    return out


def build_report(settings: Settings, out_dir: str | Path = paths.REPORTS) -> dict[str, Any]:
    """Write ``presence.md``, ``presence.html`` (and figures) into ``out_dir``; return the metrics.

    Parameters
    ----------
    settings : Settings
        ``labels``, ``classes``, ``data.name``, ``selection.selectors`` and the ``report`` block.
    out_dir : str or Path
        Folder of the documents.
    """
    cfg = settings.report
    studies = {label: read_study(label) for label in settings.labels}
    presence = _presence_with_verdicts(studies, settings)
    figs: dict[str, bytes] = {}
    selected, agreement, top, confusion, evidence = {}, {}, {}, {}, {}
    assoc_tables, profile = read_association(settings.labels)
    assoc_lines = {
        label: association_lines(t, top=cfg.top_shap) for label, t in assoc_tables.items()
    }
    effects = effect_matrix(assoc_tables)
    if len(effects):
        figs["effects"] = figures.effects_png(effects)
    for label, study in studies.items():
        selected[label] = _selected(label, settings.selection.selectors)
        agreement[label] = bas.agreement_matrix(selected[label])
        top[label] = shap_top(study["importance"], cfg.top_shap)
        evidence[label] = _evidence(selected[label], top[label], assoc_tables[label])
        if len(study["predictions"]):
            confusion[label] = _confusion(label, study, presence, figs)
    conf = _confounds(settings, presence, figs)
    _beyond_associated(settings, presence, studies, conf.pop("train"), conf.pop("test"))
    shared = bas.shared_bas(evidence) if evidence else pd.DataFrame()
    if len(shared):
        figs["shared"] = figures.shared_png(shared)
    if any(np.isfinite(e.get("ba_mean", math.nan)) for e in presence):
        figs["presence"] = figures.presence_png(presence)
    rep = PresenceReport(
        generated=f"from corpus {settings.data.name}",
        alpha=cfg.alpha,
        rule=rule_sentence(cfg.alpha, len(presence), cfg.correction),
        correction=cfg.correction,
        confound_v=cfg.confound_v,
        min_speakers=cfg.min_speakers,
        presence=presence,
        experiments=pd.concat([s["results"] for s in studies.values()], ignore_index=True),
        association=conf["association"],
        confounds=conf["pairs"],
        levels=conf["levels"],
        class_counts=conf["class_counts"],
        selected=selected,
        agreement=agreement,
        shap_top=top,
        shared=shared,
        confusion=confusion,
        figures=figs,
        notes=_notes(presence),
        association_lines=assoc_lines,
        profile=profile,
    )
    write_documents(rep, Path(out_dir))
    for e in presence:
        log.info("%-12s %s", e["label"], e.get("verdict", NO_RESULT))
    return presence_metrics(presence, settings)


def _beyond_associated(
    settings: Settings,
    presence: list[dict[str, Any]],
    studies: dict[str, dict[str, Any]],
    train: pd.DataFrame,
    test: pd.DataFrame,
) -> None:
    """Test each label beyond the labels associated with it (see :func:`beyond`)."""
    both = pd.concat([train, test], ignore_index=True)
    pairs = associated_pairs(
        both,
        [c for c in both.columns if c not in ("FileName", "Speaker")],
        settings.report.beyond_v,
    )
    beyond(settings, presence, studies, test, pairs)


def _presence_with_verdicts(
    studies: dict[str, dict[str, Any]], settings: Settings
) -> list[dict[str, Any]]:
    """Each label's presence entry with its table-level verdict (correction across labels)."""
    cfg = settings.report
    presence = [presence_entry(label, studies[label]) for label in settings.labels]
    verdicts = table_verdicts(
        {e["label"]: e.get("p_value", math.nan) for e in presence},
        {e["label"]: e.get("ci_low", math.nan) for e in presence},
        {e["label"]: e.get("chance", math.nan) for e in presence},
        cfg.alpha,
        cfg.correction,
    )
    for e in presence:
        e.update(verdicts[e["label"]])
    return presence


def _evidence(
    selected: dict[str, list[str]], top: list[str], associated: pd.DataFrame
) -> dict[str, list[str]]:
    """The BA lists naming a label's BAs: selectors but ``all``, SHAP top list, association."""
    return {
        **{m: b for m, b in selected.items() if m != "all"},
        "shap": top,
        "association": sorted(set(associated.loc[associated["associated"].astype(bool), "BA"])),
    }


def _confusion(
    label: str,
    study: dict[str, Any],
    presence: list[dict[str, Any]],
    figs: dict[str, bytes],
) -> tuple[list[str], np.ndarray]:
    """Classes and counts of the chosen model's test predictions; its figure goes into ``figs``."""
    classes, counts = confusion_counts(study["predictions"])
    chosen = next(e for e in presence if e["label"] == label).get("chosen")
    title = f"{label}: {config_text(chosen)}" if chosen else label
    figs[f"confusion_{label}"] = figures.confusion_png(classes, counts, title)
    return classes, counts


def _notes(presence: list[dict[str, Any]]) -> list[str]:
    """The notes under the report: where the figures come from, how several seeds combine."""
    notes = [
        "Figures come from the study stages' own outputs (metrics/study/<label>/); no model was "
        "re-run."
    ]
    if any(e.get("n_seeds", 1) > 1 for e in presence):
        notes.append(
            "With several seeds: mean ± standard deviation across seeds; the interval spans the "
            "seeds' intervals; the p-value is the largest of the seeds'; BAs and confusion come "
            "from the first seed."
        )
    return notes

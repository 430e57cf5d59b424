"""What stage ``study@<label>`` reads besides the tables, and everything it writes."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

from smp_balr.core import paths
from smp_balr.core.errors import UserError
from smp_balr.core.outputs import atomic_dir, write_csv, write_json
from smp_balr.data.tables import features_stage, read_features
from smp_balr.evaluation.scores import plot_confusion
from smp_balr.explain import ExplainReport, write_outputs
from smp_balr.model.artefacts import save_model
from smp_balr.study.grid import CONFIG_KEYS, SUMMARY_KEYS, config_text
from smp_balr.study.run import StudyResult

log = logging.getLogger(__name__)


def feature_lists(label: str, methods: Sequence[str]) -> dict[str, list[str] | str]:
    """Each method's BA list for ``label``, or the one line saying why it cannot be used.

    An empty selection is not an error of the study: the configurations on it fail with
    that line in the results table, and the others go on.
    """
    out: dict[str, list[str] | str] = {}
    for method in methods:
        try:
            out[method] = read_features(
                paths.features_file(label, method), features_stage(label, method)
            )
        except UserError as err:
            out[method] = str(err)
    return out


def _number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def chosen_summary(
    label: str, study: StudyResult, explained: ExplainReport | None
) -> dict[str, Any]:
    """``chosen.json``: the chosen configuration, its figures across seeds, its SHAP headline."""
    results = study.results
    out: dict[str, Any] = {
        "label": label,
        "n_configurations": int(len(study.summary)),
        "n_runs": int(len(results)),
        "n_failed": int((results["status"] != "success").sum()),
    }
    if study.chosen is None:
        return {**out, "chosen": None}
    row = study.summary[
        [
            tuple(r) == tuple(study.chosen)
            for r in study.summary[list(CONFIG_KEYS)].itertuples(index=False)
        ]
    ].iloc[0]
    out["chosen"] = {
        k: (int(v) if k == "balance" else str(v)) for k, v in zip(CONFIG_KEYS, study.chosen)
    }
    out["chosen_text"] = config_text(study.chosen)
    for key in SUMMARY_KEYS:
        out[key] = _number(float(row[key])) if key in row else None
    out["seeds"] = list(row["seeds"])
    test = study.outcome.test
    out["scheme"] = test.metrics["permutation"]["scheme"]
    out["n_test_speakers"] = test.metrics["n_speakers"]
    out["classes"] = test.classes
    if explained is not None:
        out["shap"] = {
            k: explained.metrics[k] for k in ("top5", "top5_share", "top10", "top10_share")
        }
    return out


def write_study(label: str, study: StudyResult, explained: ExplainReport | None) -> None:
    """Write stage ``study@<label>``'s outputs: its ``metrics/study/`` folder, the chosen model.

    The model file is always written (a chosen model, or none when nothing was chosen:
    then the stage has failed before, see :func:`check_chosen`).
    """
    with atomic_dir(paths.study_dir(label)) as out:
        write_csv(study.results, out / paths.STUDY_RESULTS)
        write_json(chosen_summary(label, study, explained), out / paths.STUDY_CHOSEN)
        test = study.outcome.test
        write_csv(test.predictions, out / paths.STUDY_PREDICTIONS)
        plot_confusion(
            test.confusion,
            test.classes,
            out / paths.STUDY_CONFUSION,
            title=f"{label}: {config_text(study.chosen)} (row-normalised)",
        )
        explain_dir = out / paths.STUDY_EXPLAIN
        explain_dir.mkdir()
        if explained is not None:
            write_outputs(explain_dir, explained, label, study.outcome.row["seed"])
    save_model(study.outcome.model, paths.study_model(label))


def check_chosen(label: str, study: StudyResult) -> None:
    """Fail with one line when no configuration of the study could be chosen (every one failed)."""
    if study.chosen is not None:
        return
    errors = study.results.loc[study.results["status"] != "success", "error"]
    first = errors.iloc[0] if len(errors) else "no configuration has a training-side score"
    raise UserError(f"every configuration of the study of '{label}' failed; the first: {first}")


def study_paths(label: str) -> list[Path]:
    """The outputs dvc.yaml declares for stage ``study@<label>``."""
    return [paths.study_dir(label), paths.study_model(label)]

"""Stage `test`: evaluate the trained model on the test table, against chance."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from smp_balr import evaluation, paths
from smp_balr.cli import run
from smp_balr.modeling import load_model, scorable_rows
from smp_balr.outputs import write_csv, write_json
from smp_balr.params import as_int, get, load_params
from smp_balr.tables import ba_matrix, class_filter

log = logging.getLogger("test")


def main() -> None:
    params = load_params()
    label = str(get(params, "label"))
    seed = as_int(get(params, "seed"), "seed", minimum=0)
    n_perm = as_int(get(params, "test.n_permutations"), "test.n_permutations", minimum=1)
    n_boot = as_int(get(params, "test.n_bootstrap"), "test.n_bootstrap", minimum=1)

    art = load_model(paths.MODEL_FILE)
    classes = art["classes"]
    table = paths.test_table(str(get(params, "data.name")))
    df, dropped, unseen = scorable_rows(art, label, table, class_filter(params, label))
    n_spk = df["Speaker"].nunique()
    log.info("%s: %d rows, %d speakers (%d dropped by the class filter)", table, len(df), n_spk, dropped)

    shared = sorted(set(df["Speaker"].astype(str)) & set(art["meta"].get("train_speakers", [])))
    if shared:
        log.warning("!" * 72)
        log.warning("%d TEST SPEAKER(S) ALSO IN TRAINING: %s", len(shared), ", ".join(shared[:10]))
        log.warning("the scores below are NOT speaker-independent; fix the Train/Test split of the data")
        log.warning("!" * 72)

    proba = art["model"].predict_proba(ba_matrix(df, art["features"]))
    col_classes = art["encoder"].inverse_transform(art["model"].classes_)
    y_pred = col_classes[np.argmax(proba, axis=1)].astype(str)
    y_true = df[label].astype(str).to_numpy()
    speakers = df["Speaker"].astype(str).to_numpy()

    metrics = evaluation.evaluate(y_true, y_pred, classes, speakers, n_perm, n_boot, seed)
    scheme = metrics["permutation"]["scheme"]
    how = ("whole speakers exchange labels (label constant within each speaker)" if scheme == "between_speakers"
           else "labels shuffled among the rows of each speaker (label varies within speakers)")
    log.info("permutation test: scheme %s, %s; %d permutations", scheme, how, n_perm)
    metrics["n_excluded_unseen_class"] = sum(unseen.values())
    metrics["n_excluded_class_filter"] = int(dropped)
    metrics["n_shared_speakers"] = len(shared)
    log.info("%s", evaluation.verdict(metrics))

    predictions = pd.DataFrame({"FileName": df["FileName"].astype(str), "Speaker": speakers,
                                "true": y_true, "predicted": y_pred})
    for j, cls in enumerate(col_classes):
        predictions[f"prob_{cls}"] = proba[:, j]
    counts = evaluation.confusion(y_true, y_pred, classes)
    title = f"{label}: {art['meta'].get('model_method', '')} (row-normalised)"
    evaluation.plot_confusion(counts, classes, paths.CONFUSION_PNG, title=title)
    write_csv(evaluation.report_frame(y_true, y_pred, classes), paths.CLASSIFICATION_REPORT, index=True)
    write_csv(predictions, paths.PREDICTIONS)
    write_json(metrics, paths.TEST_METRICS)
    outputs = (paths.TEST_METRICS, paths.CLASSIFICATION_REPORT, paths.PREDICTIONS, paths.CONFUSION_PNG)
    log.info("wrote %s", ", ".join(map(str, outputs)))


if __name__ == "__main__":
    run(main, "test")

"""The study: every configuration fitted and tested in one process,
chosen on the training side only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from smp_balr.core.parallel import parallel_backend
from smp_balr.core.params import load_params
from smp_balr.core.settings import StudySettings, TestSettings, settings_from_params
from smp_balr.study import configurations
from smp_balr.study.run import RESULT_COLUMNS, run_study

from conftest import ROOT

N_BA = 12


def _corpus(seed: int = 0, n_spk: int = 24, per: int = 30) -> pd.DataFrame:
    """Speakers with their own BA profile; BA0 and BA1 follow the within-speaker label Style."""
    rng = np.random.default_rng(seed)
    rows = n_spk * per
    spk = np.repeat([f"s{k:02d}" for k in range(n_spk)], per)
    style = rng.choice(["calm", "loud"], rows)
    profile = np.repeat(rng.uniform(0.2, 0.8, (n_spk, N_BA)), per, axis=0)
    ba = (rng.random((rows, N_BA)) < profile).astype(np.int8)
    loud = style == "loud"
    ba[:, 0] = np.where(rng.random(rows) < 0.9, loud, ~loud)
    ba[:, 1] = np.where(rng.random(rows) < 0.8, loud, ~loud)
    df = pd.DataFrame(ba, columns=[f"BA{j}" for j in range(N_BA)])
    df.insert(0, "FileName", [f"{s}_u{i}.wav" for i, s in enumerate(spk)])
    df.insert(1, "Speaker", spk)
    df.insert(2, "Group", np.where(np.repeat(np.arange(n_spk), per) < 16, "Train", "Test"))
    df["Style"] = style
    return df


def _settings(**study):
    s = settings_from_params(load_params(ROOT / "params.yaml"))
    dt = replace(
        s.model.dt,
        grid={
            "max_depth": (2, 4),
            "min_samples_split": (2,),
            "min_samples_leaf": (1,),
            "criterion": ("gini",),
        },
        cv_folds=3,
        n_jobs=1,
    )
    grid = {
        "features": ("all", "slda"),
        "model": ("logreg", "dt"),
        "balance": (0,),
        "seeds": (),
        "n_jobs": 1,
        **study,
    }
    return replace(
        s,
        model=replace(s.model, dt=dt, logreg=replace(s.model.logreg, cv_folds=3)),
        test=TestSettings(n_permutations=200, n_bootstrap=100, alpha=0.05),
        study=StudySettings(**grid),
    )


def _split(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (
        df[df["Group"] == "Train"].reset_index(drop=True),
        df[df["Group"] == "Test"].reset_index(drop=True),
    )


EMPTY = "features file features/Style/Style_slda_features.csv lists no BA: no BA passed"
FEATURES = {"all": [f"BA{j}" for j in range(N_BA)], "slda": EMPTY}


def test_grid_order_and_size() -> None:
    configs = configurations(["all", "slda"], ["logreg", "mlp", "dt"], [0, 2], [1, 2])
    assert (
        len(configs) == 24
        and configs[0].text == "all / logreg / balance 0"
        and configs[0].seed == 1
    )


def test_every_configuration_runs_failed_ones_keep_their_line() -> None:
    train, test = _split(_corpus())
    res = run_study(train, test, "Style", FEATURES, _settings(), progress=False)
    r = res.results
    assert list(r.columns) == RESULT_COLUMNS and len(r) == 4
    failed = r[r["status"] == "failed"]
    assert list(failed["features"]) == ["slda", "slda"] and (failed["error"] == EMPTY).all()
    ok = r[r["status"] == "success"]
    assert (ok["balanced_accuracy"] > 0.75).all() and (ok["p_value"] < 0.01).all()
    assert (ok["scheme"] == "within_speakers").all() and (ok["n_test_speakers"] == 8).all()
    assert res.chosen[0] == "all" and res.outcome.model is not None
    assert res.outcome.row["features"] == "all" and res.outcome.test.metrics["n_rows"] == len(test)


def test_choice_and_training_scores_do_not_see_the_test_labels() -> None:
    train, test = _split(_corpus())
    settings = _settings()
    a = run_study(train, test, "Style", FEATURES, settings, progress=False)
    shuffled = test.copy()
    shuffled["Style"] = np.random.default_rng(1).permutation(shuffled["Style"].to_numpy())
    b = run_study(train, shuffled, "Style", FEATURES, settings, progress=False)
    assert a.chosen == b.chosen
    pd.testing.assert_series_equal(a.results["selection_score"], b.results["selection_score"])
    assert not a.results["balanced_accuracy"].equals(
        b.results["balanced_accuracy"]
    )  # the test side did change


def test_parallel_and_serial_runs_give_the_same_table() -> None:
    train, test = _split(_corpus(seed=3))
    one = run_study(train, test, "Style", FEATURES, _settings(), n_jobs=1, progress=False)
    two = run_study(train, test, "Style", FEATURES, _settings(), n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(one.results, two.results)


def test_seeds_repeat_every_configuration() -> None:
    train, test = _split(_corpus(seed=4))
    res = run_study(
        train,
        test,
        "Style",
        {"all": FEATURES["all"]},
        _settings(features=("all",), model=("logreg",), seeds=(1, 2)),
        progress=False,
    )
    assert list(res.results["seed"]) == [1, 2] and len(res.summary) == 1
    assert res.summary.iloc[0]["n_ok"] == 2


def test_dask_local_cluster_gives_the_loky_table() -> None:
    distributed = pytest.importorskip("distributed")
    train, test = _split(_corpus(seed=5))
    settings = _settings()
    with parallel_backend("loky"):
        loky = run_study(train, test, "Style", FEATURES, settings, n_jobs=2, progress=False)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster),
    ):
        with parallel_backend("dask"):
            dask = run_study(train, test, "Style", FEATURES, settings, n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(loky.results, dask.results)

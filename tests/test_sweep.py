"""The sweep's grid: validation before anything is queued, DVC's grid syntax, queue status parsing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from smp_balr.errors import UserError
from smp_balr.sweep import (
    SweepGrid,
    error_line,
    label_columns,
    parse_grid,
    parse_queue_status,
    queue_command,
    queued_names,
)

HEADER = ["FileName", "Speaker", "Group", "Language", "Modality", "EmoClass", "Noise", "BA0", "BA1"]
AVAILABLE = label_columns(HEADER)


def _params(**sweep) -> dict:
    return {"labels": ["EmoClass", "Language", "Modality"], "selection": {"selectors": ["all", "slda", "bayes"]},
            "sweep": {"label": None, "features": ["all", "slda", "bayes"], "model": ["logreg", "mlp", "dt"],
                      "balance": [0, 2], "seeds": [], "jobs": 2, **sweep}}


def test_label_columns_drop_ids_and_bas() -> None:
    assert AVAILABLE == ["Language", "Modality", "EmoClass", "Noise"]


def test_default_grid_is_every_label_of_labels() -> None:
    grid = parse_grid(_params(), AVAILABLE)
    assert grid.labels == ("EmoClass", "Language", "Modality") and grid.n_experiments == 3 * 3 * 3 * 2
    assert len(grid.configurations()) == grid.n_experiments
    assert grid.configurations()[0] == {"label": "EmoClass", "features.method": "all", "model.method": "logreg",
                                        "train.balance": 0}


def test_project_params_yaml_grid_is_valid() -> None:
    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())
    grid = parse_grid(params, [*params["labels"], "Noise"])
    assert set(grid.models) == {"logreg", "mlp", "dt"} and grid.balance == (0, 2)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": ["mlp", "svm"]}, "sweep.model has 'svm', which is not a model.method; valid values: logreg, mlp, dt"),
        ({"label": ["Modality", "Accent"]}, "sweep.label has 'Accent', which is not a column of the formatted training "
                                            "table; valid values: EmoClass, Language, Modality"),
        ({"label": ["Noise"]}, "sweep.label has 'Noise', which is not in `labels`"),
        ({"features": ["all", "lasso"]}, "sweep.features has 'lasso', which is not a features.method produced by "
                                         "selection.selectors; valid values: all, slda, bayes, common"),
        ({"balance": [0, 3]}, "sweep.balance has 3, which is not a train.balance option; valid values: 0, 1, 2"),
        ({"balance": ["0"]}, "sweep.balance has '0'"),
        ({"model": []}, "sweep.model is empty"),
        ({"model": ["dt", "dt"]}, "sweep.model lists 'dt' twice"),
        ({"seeds": [1, -2]}, "sweep.seeds must be at least 0"),
        ({"jobs": 0}, "sweep.jobs must be at least 1"),
        ({"workers": 2}, "unknown setting sweep.workers"),
    ],
)
def test_invalid_grid_value_is_one_line_naming_key_and_valid_values(change, message) -> None:
    with pytest.raises(UserError) as err:
        parse_grid(_params(**change), AVAILABLE)
    text = str(err.value)
    assert message in text and "\n" not in text


def test_feature_method_not_produced_by_selectors_is_refused() -> None:
    params = _params(features=["bayes"])
    params["selection"]["selectors"] = ["all", "slda"]
    with pytest.raises(UserError, match="valid values: all, slda, common$"):
        parse_grid(params, AVAILABLE)


def test_jobs_from_command_line_override_params() -> None:
    assert parse_grid(_params(), AVAILABLE, jobs=1).jobs == 1
    with pytest.raises(UserError, match="--jobs must be at least 1"):
        parse_grid(_params(), AVAILABLE, jobs=0)


def test_queue_command_uses_dvc_comma_grid_syntax_and_quotes_odd_values() -> None:
    grid = SweepGrid(("Modality", "Voice range", "true"), ("all",), ("dt", "mlp"), (0, 2), (1, 2), jobs=1)
    cmd = queue_command(grid)
    assert cmd[:4] == ["dvc", "exp", "run", "--queue"]
    sets = [cmd[i + 1] for i, a in enumerate(cmd) if a == "-S"]
    assert sets == ["label=Modality,'Voice range','true'", "features.method=all", "model.method=dt,mlp",
                    "train.balance=0,2", "seed=1,2"]
    assert grid.n_experiments == 3 * 1 * 2 * 2 * 2
    # the hydra sweep parser DVC uses expands it into exactly the grid's configurations
    from dvc.utils.hydra import get_hydra_sweeps

    sweeps = get_hydra_sweeps({"params.yaml": sets})
    assert len(sweeps) == grid.n_experiments
    got = {tuple(s["params.yaml"]) for s in sweeps}
    want = {tuple(f"{k}={v}" for k, v in c.items()) for c in grid.configurations()}
    assert {tuple(x.replace("'", "") for x in g) for g in got} == want


def test_parse_queue_status_and_queued_names() -> None:
    status = """Task     Name        Created    Status
717f6c7  privy-kaka  04:53 AM   Running
16efac9  atrip-buoy  04:53 AM   Queued
4b88c7e  sober-dook  Nov 27 04:53 AM   Failed
a67e673  gauzy-nosh  04:53 AM   Success

Worker status: 1 active, 0 idle
"""
    assert parse_queue_status(status) == {"privy-kaka": "Running", "atrip-buoy": "Queued", "sober-dook": "Failed",
                                          "gauzy-nosh": "Success"}
    out = "Queueing with overrides '{...}'.\nQueued experiment 'privy-kaka' for future execution.\n" \
          "Queued experiment 'atrip-buoy' for future execution.\n"
    assert queued_names(out) == ["privy-kaka", "atrip-buoy"]


def test_error_line_prefers_the_stage_error() -> None:
    text = ("Running stage 'train':\n> python stages/train.py\n"
            "error [train]: features file features/Noise_slda_features.csv lists no features; run it\n"
            "ERROR: failed to reproduce 'train': failed to run: python stages/train.py, exited with 2\n")
    assert error_line(text).startswith("error [train]: features file")
    assert error_line("ERROR: something\n") == "ERROR: something"
    assert error_line("") == "no log"


def _status(rows: dict[str, str], active: int) -> str:
    lines = ["Task     Name        Created    Status"]
    lines += [f"abc{i:04d}  {name}  05:00 AM   {state}" for i, (name, state) in enumerate(rows.items())]
    return "\n".join(lines) + f"\n\nWorker status: {active} active, 0 idle\n"


class _Dvc:
    """Replays a sequence of `dvc queue status` outputs; records every command."""

    def __init__(self, statuses: list[str]):
        self.statuses, self.calls = statuses, []

    def __call__(self, args: list[str]):
        import subprocess

        self.calls.append(args)
        if args[:3] == ["dvc", "queue", "status"]:
            out = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        elif args[:3] == ["dvc", "queue", "logs"]:
            out = "Running stage 'train':\nerror [train]: no BA selected\n"
        else:
            out = ""
        return subprocess.CompletedProcess(args, 0, out, "")


def test_follow_queue_until_done_logging_each_failure_once(caplog) -> None:
    from smp_balr.sweep import follow_queue

    names = ["a-one", "b-two", "c-three"]
    dvc = _Dvc([_status({"a-one": "Running", "b-two": "Queued", "c-three": "Queued"}, 1),
                _status({"a-one": "Failed", "b-two": "Running", "c-three": "Queued"}, 1),
                _status({"a-one": "Failed", "b-two": "Success", "c-three": "Running"}, 1),
                _status({"a-one": "Failed", "b-two": "Success", "c-three": "Success", "old-run": "Running"}, 1)])
    with caplog.at_level("WARNING"):
        final = follow_queue(names, 0.0, dvc, sleep=lambda s: None)
    assert final == {"a-one": "Failed", "b-two": "Success", "c-three": "Success"}  # another sweep's task ignored
    assert sum(c[:3] == ["dvc", "queue", "logs"] for c in dvc.calls) == 1
    assert "experiment a-one failed: error [train]: no BA selected" in caplog.text


def test_follow_queue_stops_when_no_worker_is_left(caplog) -> None:
    from smp_balr.sweep import follow_queue

    dvc = _Dvc([_status({"a-one": "Queued"}, 0)])
    with caplog.at_level("WARNING"):
        final = follow_queue(["a-one"], 0.0, dvc, sleep=lambda s: None)
    assert final == {"a-one": "Queued"} and "no queue worker is alive" in caplog.text
    assert sum(c[:3] == ["dvc", "queue", "status"] for c in dvc.calls) == 3  # not on the first idle poll


def test_commands_run_without_waiting_for_daemons_they_leave_behind() -> None:
    """`dvc queue start` leaves worker daemons holding its output: the call must still return."""
    import time

    from smp_balr.sweep import _run

    t0 = time.perf_counter()
    proc = _run(["sh", "-c", "sleep 60 & echo started; echo note >&2"])
    assert time.perf_counter() - t0 < 30
    assert proc.returncode == 0 and proc.stdout.strip() == "started" and proc.stderr.strip() == "note"

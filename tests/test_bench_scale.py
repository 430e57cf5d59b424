"""The scale benchmark at its smallest size:
every stage runs from the dvc.yaml commands and is reported."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import ROOT


def test_bench_scale_smallest_size_runs_every_stage(tmp_path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_scale.py"),
        "--sizes",
        "1200",
        "--utterances-per-speaker",
        "50",
        "--models",
        "dt",
        "--files-max",
        "1200",
        "--workdir",
        str(tmp_path),
        "--set",
        "model.dt.grid={max_depth: [3], min_samples_split: [2], min_samples_leaf: [1], "
        "criterion: [gini]}",
        "--set",
        "model.dt.cv_folds=3",
        "--set",
        "model.dt.n_jobs=1",
        "--set",
        "test.n_permutations=200",
        "--set",
        "test.n_bootstrap=20",
        "--set",
        "explain.n_samples=20",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for stage in ("demo (BA files)", "format", "select slda", "train dt", "test dt", "explain dt"):
        row = next((ln for ln in out.splitlines() if ln.startswith(stage)), None)
        assert row is not None, f"{stage} missing from\n{out}"
        assert "FAIL" not in row, row
    train = next(ln for ln in out.splitlines() if ln.startswith("train dt"))
    peak = float(re.search(r", +(\d+\.\d\d)", train).group(1))
    assert peak > 0.02, train  # a real process's resident memory, in GB
    assert "largest peak memory of a stage" in out
    assert not any(tmp_path.iterdir()), "scratch projects were not removed"


def test_growth_exponent_and_direct_tables(tmp_path) -> None:
    """Above --files-max the generator writes the tables:
    they read back as the format stage's would."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_scale

    assert bench_scale.growth([10, 100, 1000], [1.0, 10.0, 1000.0]) == "2.00"
    assert bench_scale.growth([10, 100], [1.0, None]) == "-"
    params = bench_scale.prepare(
        tmp_path,
        400,
        20,
        [
            ("demo.n_ba", 64),
            ("demo.n_constant", 4),
            ("demo.planted", {"Language": 3, "Modality": 3, "EmoClass": 6}),
        ],
    )
    assert params["demo"]["n_speakers"] == 20 and params["demo"]["n_test_speakers"] == 4
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_scale.py"),
            "--write-tables",
            str(tmp_path),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    from smp_balr.data.tables import ba_columns, read_table

    train, test = (
        read_table(tmp_path / "data" / "demo_train_data.csv"),
        read_table(tmp_path / "data" / "demo_test_data.csv"),
    )
    assert len(train) + len(test) == 400 and len(ba_columns(train)) == 64
    assert set(train["Group"]) == {"Train"} and set(test["Group"]) == {"Test"}
    assert list(train.columns[:6]) == [
        "FileName",
        "Speaker",
        "Group",
        "Language",
        "Modality",
        "EmoClass",
    ]


def test_bench_scale_table_times_format_from_a_parquet_table(tmp_path) -> None:
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_scale.py"),
        "--sizes",
        "1200",
        "--utterances-per-speaker",
        "50",
        "--table",
        "--format-only",
        "--workdir",
        str(tmp_path),
        "--keep",
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {ln.split(" |")[0].strip() for ln in proc.stdout.splitlines() if " | " in ln}
    assert {"demo (table)", "format"} <= rows and "select slda" not in rows, proc.stdout
    assert "FAIL" not in proc.stdout, proc.stdout
    project = tmp_path / "n1200"
    assert (project / "data" / "demo" / "ba.parquet").is_file() and not (
        project / "data" / "demo" / "ba"
    ).exists()
    from smp_balr.data.tables import read_table

    train, test = (
        read_table(project / "data" / f"demo_{part}_data.csv") for part in ("train", "test")
    )
    assert len(train) + len(test) == 1200 and len(train.filter(regex=r"^BA\d+$").columns) == 512

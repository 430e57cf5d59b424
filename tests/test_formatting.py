"""Step 1 formatting: joining labels and BA files, every error case, atomic outputs, the stage."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from smp_balr.core.errors import UserError
from smp_balr.data.formatting import FormattedTable, format_corpus, read_labels, write_tables
from smp_balr.data.tables import ba_columns, read_table

from conftest import ROOT, SMALL_DEMO, run_cmd

D = 6


def _vec(i: int) -> np.ndarray:
    return np.array([(i >> b) & 1 for b in range(D)], dtype=np.int8)


def make_corpus(
    tmp: Path, rows: list[dict], skip: tuple[str, ...] = (), extra_files: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """Labels CSV from ``rows`` and one BA file per row (formats cycle), except ``skip``."""
    ba = tmp / "ba"
    ba.mkdir(parents=True, exist_ok=True)
    for i, row in enumerate(rows):
        name = row["FileName"]
        if name in skip:
            continue
        stem = Path(name).stem
        folder = ba / Path(name).parent
        folder.mkdir(parents=True, exist_ok=True)
        v = _vec(i)
        kind = i % 3
        if kind == 0:
            np.savetxt(folder / f"{stem}_ba.txt", v)
        elif kind == 1:
            (folder / f"{stem}_ba.pkl").write_bytes(
                pickle.dumps(np.c_[v, 1 - v].astype(np.float64))
            )
        else:
            np.save(folder / f"{stem}_ba.npy", v)
    for name in extra_files:
        np.savetxt(ba / name, _vec(0), fmt="%d")
    labels = tmp / "labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    return labels, ba


def rows_basic() -> list[dict]:
    rows = []
    for s, group in (("s1", "Train"), ("s2", "Train"), ("s3", "Test")):
        for u in range(3):
            rows.append(
                {
                    "FileName": f"{s}/{s}_u{u}.wav",
                    "Speaker": s,
                    "Emo": "AHN"[u],
                    "Group": group,
                    "Lang": "x,y",
                }
            )
    rows.reverse()  # the output must be sorted regardless of the CSV order
    return rows


def test_format_split_columns_order_and_values(tmp_path: Path, caplog) -> None:
    rows = rows_basic()
    labels, ba = make_corpus(tmp_path, rows, skip=("s1/s1_u1.wav",), extra_files=("stray_ba.txt",))
    caplog.set_level(logging.INFO)
    tables, report = format_corpus(labels, ba, split=True)
    assert report.n_matched == 8 and report.labels_without_vectors == ["s1/s1_u1.wav"]
    assert report.vectors_without_labels == ["stray_ba.txt"]
    assert "labels without vectors: 1 (first: s1/s1_u1.wav)" in caplog.text
    assert "vectors without labels: 1 (first: stray_ba.txt)" in caplog.text
    train = tables["train"].to_frame()
    test = tables["test"].to_frame()
    # Group right after Speaker, then the other labels in CSV order, then BAs
    assert list(train.columns[:5]) == ["FileName", "Speaker", "Group", "Emo", "Lang"]
    assert ba_columns(train) == [f"BA{i}" for i in range(D)]
    assert train["FileName"].tolist() == sorted(train["FileName"])
    assert set(train["Speaker"]) == {"s1", "s2"} and set(test["Speaker"]) == {"s3"}
    assert len(train) == 5 and len(test) == 3
    # each row carries the vector written for it
    index_of = {r["FileName"]: i for i, r in enumerate(rows)}
    for _, r in pd.concat([train, test]).iterrows():
        assert r[ba_columns(train)].astype(int).tolist() == _vec(index_of[r["FileName"]]).tolist()


def test_written_csv_reads_back(tmp_path: Path) -> None:
    labels, ba = make_corpus(tmp_path, rows_basic())
    tables, _ = format_corpus(labels, ba, split=True, invert=True)
    out = tmp_path / "out" / "t_train.csv"
    write_tables({out: tables["train"]})
    back = read_table(out)
    expected = tables["train"].to_frame()
    assert back["Lang"].tolist() == ["x,y"] * len(back)  # quoted comma survives
    assert (
        back[ba_columns(back)].to_numpy().tolist()
        == expected[ba_columns(expected)].to_numpy().tolist()
    )
    raw = pd.read_csv(out)
    assert all(str(raw[c].dtype).startswith("int") for c in ba_columns(raw))
    # invert flipped every value
    plain, _ = format_corpus(labels, ba, split=True)
    assert (plain["train"].ba == 1 - tables["train"].ba).all()


def test_split0_without_group(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if k != "Group"} for r in rows_basic()]
    labels, ba = make_corpus(tmp_path, rows)
    tables, _ = format_corpus(labels, ba, split=False)
    frame = tables["all"].to_frame()
    assert len(frame) == 9 and list(frame.columns[:4]) == ["FileName", "Speaker", "Emo", "Lang"]
    with pytest.raises(UserError, match="Group"):
        format_corpus(labels, ba, split=True)


@pytest.mark.parametrize(
    ("change", "fragments"),
    [
        (
            lambda df: df.drop(columns=["Speaker", "FileName"]),
            ["lacks required column(s) FileName, Speaker"],
        ),
        (lambda df: pd.concat([df, df.iloc[[0]]]), ["appears more than once"]),
        (
            lambda df: df.assign(Group=["Train", "Dev"] * 4 + ["Test"]),
            [
                "Group must be Train or Test",
                "'Dev'",
                "on 4 rows (first on line 3",
                "write Train or Test",
            ],
        ),
        (
            lambda df: df.assign(Group="Train"),
            ["has no row with Group 'Test'", "mark the rows of some speakers"],
        ),
        (
            lambda df: df.drop(columns=["Group"]),
            ["has no Group column", "with Train or Test on every row"],
        ),
        (
            lambda df: df.iloc[:0],
            ["has a header (FileName, Speaker, Emo, Group, Lang) but no rows"],
        ),
        (
            lambda df: df.assign(FileName=[f"zz{i}.wav" for i in range(len(df))]),
            ["no FileName", "matched"],
        ),
        (lambda df: df.assign(Speaker=[""] + ["s"] * (len(df) - 1)), ["Speaker is empty"]),
        (lambda df: df.assign(BA3="x"), ["named like BA columns"]),
    ],
    ids=[
        "missing-columns",
        "duplicate-filename",
        "bad-group",
        "no-test",
        "no-group",
        "header-only",
        "no-match",
        "empty-speaker",
        "ba-column",
    ],
)
def test_label_errors(tmp_path: Path, change, fragments) -> None:
    labels, ba = make_corpus(tmp_path, rows_basic())
    df = pd.read_csv(labels, dtype=str, keep_default_na=False)
    change(df).to_csv(labels, index=False)
    with pytest.raises(UserError) as info:
        format_corpus(labels, ba, split=True)
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg
    assert (
        "data.split" not in msg and "(none)" not in msg
    )  # dvc repro needs data.split: 1; no placeholder names


def test_test_rows_without_ba_files(tmp_path: Path) -> None:
    rows = rows_basic()
    test_rows = [r["FileName"] for r in rows if r["Group"] == "Test"]
    labels, ba = make_corpus(tmp_path, rows, skip=tuple(test_rows))
    with pytest.raises(UserError) as info:
        format_corpus(labels, ba, split=True)
    msg = str(info.value)
    assert (
        "none of the 3 rows" in msg
        and "Group 'Test' has a BA file" in msg
        and f"'{rows[0]['FileName']}' on line 2" in msg
    )


def test_empty_label_cells_reported(tmp_path: Path, caplog) -> None:
    rows = rows_basic()
    for i in (1, 4, 6):
        rows[i]["Emo"] = ""
    rows[2]["Lang"] = ""
    labels, ba = make_corpus(
        tmp_path, rows, skip=(rows[6]["FileName"],)
    )  # an unmatched row is not reported
    caplog.set_level(logging.INFO)
    tables, report = format_corpus(labels, ba, split=True)
    assert report.empty_labels == {"Emo": [3, 6], "Lang": [4]}  # CSV lines, header on line 1
    assert "label column Emo is empty on 2 matched rows (first lines: 3, 6)" in caplog.text
    assert "label column Lang is empty on 1 matched rows (first lines: 4)" in caplog.text
    assert "'empty label'" in caplog.text
    kept = pd.concat([tables["train"].meta, tables["test"].meta])
    assert (
        kept["Emo"] == ""
    ).sum() == 2  # kept in the tables: other labels of those rows are still usable


def test_missing_labels_file_and_bad_csv(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        read_labels(tmp_path / "none.csv", require_group=True)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"FileName,Speaker\n\xff\xfe,x\n")
    with pytest.raises(UserError, match="not a readable CSV"):
        read_labels(bad, require_group=False)


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    labels, ba = make_corpus(tmp_path, rows_basic())
    (ba / "s2" / "s2_u1_ba.pkl").unlink()
    np.savetxt(ba / "s2" / "s2_u1_ba.txt", np.array([0, 1, 3, 0, 1, 0]))
    with pytest.raises(UserError, match=r"s2_u1_ba\.txt holds 3 at line 3 \(BA2\)"):
        format_corpus(labels, ba, split=True)
    np.savetxt(ba / "s2" / "s2_u1_ba.txt", np.array([0, 1, 1]))
    with pytest.raises(UserError, match=r"different dimensions: .* has 6, .*s2_u1_ba\.txt has 3"):
        format_corpus(labels, ba, split=True)


def test_write_tables_all_or_nothing(tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text("OLD\n")
    blocker = tmp_path / "b.csv"
    blocker.mkdir()  # a folder where b.csv belongs: refused after a.csv's new content is complete
    table = FormattedTable(
        pd.DataFrame({"FileName": ["f"], "Speaker": ["s"]}), np.ones((1, 2), dtype=np.int8)
    )
    with pytest.raises(
        UserError, match=r"cannot write output .*b\.csv: a folder of that name is in the way"
    ):
        write_tables({first: table, blocker: table})
    assert first.read_text() == "OLD\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "b.csv"]  # no temp files left


def _stage(workdir: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DVC_STAGE"}
    env.update(PYTHONPATH=str(ROOT), **(env_extra or {}))
    return subprocess.run(
        [sys.executable, str(ROOT / "stages" / "format.py")],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _params(workdir: Path, labels: Path, ba: Path, split: int = 1) -> None:
    params = {
        "seed": 1,
        "data": {
            "name": "t",
            "labels": str(labels),
            "ba_dir": str(ba),
            "split": split,
            "invert": 0,
        },
    }
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def test_stage_bad_input_one_line_and_outputs_kept(tmp_path: Path) -> None:
    labels, ba = make_corpus(tmp_path / "corpus", rows_basic())
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    _params(work, labels, ba)
    ok = _stage(work)
    assert ok.returncode == 0, ok.stderr
    train = work / "data" / "t_train_data.csv"
    before = train.read_bytes()
    assert len(pd.read_csv(train)) == 6
    np.savetxt(ba / "s1" / "s1_u0_ba.txt", np.array([0.5] * D))
    bad = _stage(work)
    assert bad.returncode != 0
    err_lines = [ln for ln in bad.stderr.splitlines() if ln.startswith("error")]
    assert len(err_lines) == 1 and "s1_u0_ba.txt" in err_lines[0]
    assert "Traceback" not in bad.stderr
    assert train.read_bytes() == before
    assert sorted(p.name for p in (work / "data").iterdir()) == [
        "t_test_data.csv",
        "t_train_data.csv",
    ]


def test_stage_split0(tmp_path: Path) -> None:
    labels, ba = make_corpus(tmp_path / "corpus", rows_basic())
    work = tmp_path / "work"
    work.mkdir()
    _params(work, labels, ba, split=0)
    done = _stage(work)
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(work / "data" / "t_data.csv")) == 9
    assert "data.split is 0" in done.stderr  # logged
    under_dvc = _stage(work, {"DVC_STAGE": "format"})
    assert under_dvc.returncode == 2 and "set data.split: 1" in under_dvc.stderr


@pytest.mark.integration
def test_dvc_repro_format(project_copy) -> None:
    proj = project_copy(SMALL_DEMO)
    run_cmd(["dvc", "repro", "format"], proj)
    d = SMALL_DEMO["demo"]
    train = read_table(proj / "data" / "demo_train_data.csv")
    test = read_table(proj / "data" / "demo_test_data.csv")
    assert list(train.columns[:7]) == [
        "FileName",
        "Speaker",
        "Group",
        "Language",
        "Modality",
        "EmoClass",
        "Noise",
    ]
    assert ba_columns(train) == [f"BA{i}" for i in range(512)]
    raw = pd.read_csv(proj / "data" / "demo_train_data.csv", nrows=50)
    assert all(str(raw[c].dtype) == "int64" for c in ba_columns(raw))
    assert set(np.unique(train[ba_columns(train)].to_numpy())) == {0, 1}
    assert len(train) + len(test) == d["n_speakers"] * d["utterances_per_speaker"]
    assert test["Speaker"].nunique() == d["n_test_speakers"]
    assert not set(train["Speaker"]) & set(test["Speaker"])
    assert set(train["Group"]) == {"Train"} and set(test["Group"]) == {"Test"}
    assert train["FileName"].tolist() == sorted(train["FileName"])
    again = run_cmd(["dvc", "repro", "format"], proj)
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout


def test_label_values_lose_stray_spaces_and_upper_case_suffixes_match(tmp_path):
    rows = [{k: v for k, v in r.items() if k != "Lang"} for r in rows_basic()]
    labels, ba = make_corpus(tmp_path, rows)
    text = labels.read_text().splitlines()
    labels.write_text("\n".join([text[0]] + [line.replace(",", ", ") for line in text[1:]]) + "\n")
    first = next(ba.rglob("*_ba.txt"))
    first.rename(first.with_name(first.name.replace("_ba.txt", "_ba.TXT")))
    tables, _ = format_corpus(labels, ba, split=True)
    train, test = tables["train"].meta, tables["test"].meta
    assert set(train["Emo"]) == {"A", "H", "N"}  # not " A", " H"
    assert len(train) + len(test) == 9  # the _ba.TXT file matched too


def test_empty_labels_counted_apart_from_the_class_filter(tmp_path: Path, caplog) -> None:
    from smp_balr.data.tables import filter_classes, select_classes

    rows = rows_basic()
    rows[0]["Emo"] = rows[3]["Emo"] = ""
    labels, ba = make_corpus(tmp_path, rows)
    tables, _ = format_corpus(labels, ba, split=False)
    path = tmp_path / "t_data.csv"
    write_tables({path: tables["all"]})
    df = read_table(path)
    caplog.set_level(logging.INFO)
    sel = select_classes(df, "Emo", None, where=path)
    assert (len(sel.rows), sel.n_empty, sel.n_filtered) == (7, 2, 0)
    assert f"{path}: 2 rows with an empty 'Emo' cell left out (empty label)" in caplog.text
    sel = select_classes(
        df, "Emo", ["A", "H"], where=path
    )  # the N rows are filtered, the empty ones counted apart
    n_n = int((df["Emo"] == "N").sum())
    assert (sel.n_empty, sel.n_filtered, len(sel.rows)) == (2, n_n, 9 - 2 - n_n)
    kept, dropped = filter_classes(
        df, "Emo", ["A", "H"], where=path
    )  # the old signature: dropped = class filter only
    assert dropped == n_n and kept.equals(sel.rows)


@pytest.mark.parametrize(
    ("method", "fragments"),
    [
        (
            "slda",
            [
                "no BA passed the slda entry test",
                "raise selection.slda.p_enter",
                "features.method: all",
            ],
        ),
        (
            "bayes",
            ["no BA reached selection.bayes.p_direction", "lower selection.bayes.p_direction"],
        ),
        ("common", ["share no BA", "selection.common.include"]),
    ],
)
def test_empty_selection_says_what_to_change(
    tmp_path: Path, method: str, fragments: list[str]
) -> None:
    """A selection that ran and selected nothing:
    rerunning it would not help, a setting must change."""
    from smp_balr.data.tables import read_features

    path = tmp_path / f"Emo_Class_{method}_features.csv"  # a label with an underscore
    path.write_text("Feature,score\n")
    with pytest.raises(UserError) as info:
        read_features(path, f"select@Emo_Class-{method}")
    msg = str(info.value)
    assert "dvc repro" not in msg and "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg


def test_corpus_too_large_for_memory_fails_before_reading(tmp_path: Path) -> None:
    labels, ba = make_corpus(tmp_path, rows_basic())
    with pytest.raises(
        UserError,
        match=r"format of 9 BA files x 6 BAs needs about .* GB of memory but 0.0 GB is available; "
        r"format the corpus in parts",
    ):
        format_corpus(labels, ba, split=True, progress=False, memory_available=100)

"""BA vectors as one table (data.ba_table): same formatted tables as the files,
one-line errors, the DVC stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from smp_balr.core.errors import UserError
from smp_balr.core.settings import DemoSettings, check_dvc_sources, settings_from_params
from smp_balr.data.batable import read_ba_table
from smp_balr.data.demo import write_demo
from smp_balr.data.formatting import format_corpus, write_tables
from smp_balr.data.make_table import table_from_files, write_ba_table, write_demo_table

from conftest import SMALL_DEMO, run_cmd

SMALL = DemoSettings(
    n_speakers=10,
    n_test_speakers=4,
    utterances_per_speaker=12,
    n_ba=40,
    planted={"Language": 3, "Modality": 3, "EmoClass": 6},
    n_constant=4,
)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory) -> tuple[Path, Path]:
    """The small demo written as balr files
    (txt and pkl, shapes (D,) and (D, 2), ints and floats)."""
    root = tmp_path_factory.mktemp("demo")
    write_demo(SMALL, root / "ba", root / "labels.csv", root / "truth.json", progress=False)
    return root / "labels.csv", root / "ba"


def _formatted_bytes(out: Path, **kw) -> dict[str, bytes]:
    tables, _ = format_corpus(progress=False, **kw)
    out.mkdir(parents=True, exist_ok=True)
    targets = {out / f"{part}.csv": t for part, t in tables.items()}
    write_tables(targets)
    return {p.name: p.read_bytes() for p in targets}


@pytest.mark.parametrize("ext", [".csv", ".parquet"])
@pytest.mark.parametrize("labels_in_table", [False, True])
def test_table_from_the_demo_files_formats_byte_identically(
    demo_files, tmp_path, ext, labels_in_table
):
    labels, ba_dir = demo_files
    expected = _formatted_bytes(tmp_path / "files", labels_path=labels, ba_dir=ba_dir)
    table = tmp_path / f"ba{ext}"
    assert table_from_files(labels, ba_dir, table, with_labels=labels_in_table) == 120
    got = _formatted_bytes(
        tmp_path / "table",
        labels_path=table if labels_in_table else labels,
        ba_dir=None,
        ba_table=table,
    )
    assert got == expected and len(expected["train.csv"]) > 1000
    # and the same with data.invert on both sides
    inv_files = _formatted_bytes(
        tmp_path / "files_inv", labels_path=labels, ba_dir=ba_dir, invert=True
    )
    inv_table = _formatted_bytes(
        tmp_path / "table_inv", labels_path=labels, ba_dir=None, ba_table=table, invert=True
    )
    assert inv_table == inv_files != expected


def test_demo_written_as_a_table_is_the_demo_of_the_files(demo_files, tmp_path):
    labels, ba_dir = demo_files
    expected = _formatted_bytes(tmp_path / "files", labels_path=labels, ba_dir=ba_dir)
    for ext in (".parquet", ".csv"):
        table = tmp_path / f"demo{ext}"
        written = write_demo_table(SMALL, table)
        assert len(written) == 120
        assert (
            _formatted_bytes(tmp_path / ext, labels_path=table, ba_dir=None, ba_table=table)
            == expected
        )
    schema = pq.read_schema(tmp_path / "demo.parquet")
    assert schema.field("BA0").type == pa.int8() and schema.names[:3] == [
        "FileName",
        "Speaker",
        "Group",
    ]


def test_ba_columns_stay_int8_and_the_matching_counts_are_those_of_files(tmp_path):
    labels = tmp_path / "labels.csv"
    pd.DataFrame(
        {
            "FileName": ["spk1/a.wav", "spk1/b.wav", "c.wav", "gone.wav"],
            "Speaker": ["s1", "s1", "s2", "s2"],
            "Group": ["Train", "Train", "Test", "Test"],
        }
    ).to_csv(labels, index=False)
    ba = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0], [0, 0, 0]], dtype=np.int8)
    table = tmp_path / "t.parquet"
    # table FileNames: other extension, no folder, a row no label points to
    write_ba_table(
        pd.DataFrame({"FileName": ["a.flac", "spk1/b", "c.wav", "unused.wav"]}), ba, table
    )
    read = read_ba_table(table)
    assert read.ba.dtype == np.int8 and read.ba.flags.c_contiguous and np.array_equal(read.ba, ba)
    tables, report = format_corpus(labels, None, ba_table=table, progress=False)
    assert report.n_matched == 3 and report.labels_without_vectors == ["gone.wav"]
    assert (
        report.vectors_without_labels == ["unused.wav"]
        and report.n_files == 4
        and report.source == "table"
    )
    assert tables["train"].ba.dtype == np.int8
    assert np.array_equal(tables["train"].ba, ba[:2]) and np.array_equal(tables["test"].ba, ba[2:3])
    # floats 0.0/1.0 and booleans are BA values too, read into int8
    pq.write_table(
        pa.table(
            {
                "FileName": ["a.wav", "b.wav", "c.wav"],
                "BA1": [1.0, 0.0, 1.0],
                "BA0": [True, False, True],
            }
        ),
        tmp_path / "f.parquet",
    )
    assert np.array_equal(read_ba_table(tmp_path / "f.parquet").ba, [[1, 1], [0, 0], [1, 1]])
    (tmp_path / "f.csv").write_text("FileName,Speaker,BA1,BA0\na.wav,s,1.0,0.0\nb.wav,s, 1 ,1e0\n")
    floats = read_ba_table(tmp_path / "f.csv", invert=True)
    assert (
        floats.ba.dtype == np.int8
        and np.array_equal(floats.ba, [[1, 0], [0, 0]])
        and floats.labels is None
    )


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _parquet(path: Path, columns: dict) -> Path:
    pq.write_table(pa.table(columns), path)
    return path


@pytest.mark.parametrize(
    "write, message",
    [
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0,BA1\na.wav,0,1\nb.wav,1,2\n"),
            r"^BA table .*t.csv: column BA1 holds 2 on line 3 \(FileName 'b.wav'\); "
            r"BA values must be 0 or 1",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0,BA1\na.wav,0,0.5\nb.wav,1,1\n"),
            r"column BA1 holds 0.5 on line 2 \(FileName 'a.wav'\)",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0,BA1\na.wav,0,1\nb.wav,x,1\nc.wav,1,7\n"),
            r"column BA0 holds 'x', not a number, on line 3 \(FileName 'b.wav'\)",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0,BA1\na.wav,0,\n"),
            r"column BA1 is empty on line 2",
        ),
        (
            lambda p: _parquet(
                p / "t.parquet", {"FileName": ["a", "b", "c"], "BA0": [0, 1, 1], "BA1": [1, 1, 3]}
            ),
            r"column BA1 holds 3 on row 3 \(FileName 'c'\); BA values must be 0 or 1",
        ),
        (
            lambda p: _parquet(
                p / "t.parquet", {"FileName": ["a", "b"], "BA0": [0.0, float("nan")]}
            ),
            r"column BA0 is empty on row 2 \(FileName 'b'\)",
        ),
        (
            lambda p: _parquet(p / "t.parquet", {"FileName": ["a", "b"], "BA0": ["0", "one"]}),
            r"column BA0 holds 'one', not a number, on row 2",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0,BA1,BA3\na.wav,0,1,1\n"),
            r"^BA table .*t.csv lacks column\(s\) BA2 \(1 of BA0..BA3\); every BA column from BA0",
        ),
        (
            lambda p: _parquet(p / "t.parquet", {"FileName": ["a"], "BA1": [1], "BA2": [0]}),
            r"lacks column\(s\) BA0 ",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,Speaker\na.wav,s\n"),
            r"has no BA columns; name them BA0, BA1",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0,BA01\na.wav,0,1\n"),
            r"column BA01 should be named BA1",
        ),
        (
            lambda p: _csv(p / "t.csv", "Name,BA0\na.wav,0\n"),
            r"has no FileName column \(it has: Name, BA0\)",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0\na.wav,0\nb.wav,1\na.wav,1\n"),
            r"^BA table .*t.csv: FileName 'a.wav' appears more than once "
            r"\(line 2 and line 4; 1 duplicates in all\)",
        ),
        (
            lambda p: _parquet(
                p / "t.parquet", {"FileName": ["x/a.wav", "b", "x\\a.wav"], "BA0": [0, 1, 1]}
            ),
            r"FileNames 'x/a.wav' \(row 1\) and 'x\\a.wav' \(row 3\) name the same audio file",
        ),
        (
            lambda p: _csv(p / "t.csv", "FileName,BA0\n , 1\n"),
            r"FileName is empty on line 2 \(1 rows\)",
        ),
        (
            lambda p: _csv(p / "t.tsv", "FileName\tBA0\n"),
            r"must be a .csv or .parquet file, not '.tsv'",
        ),
        (
            lambda p: p / "missing.parquet",
            r"BA table .*missing.parquet \(data.ba_table\) not found",
        ),
        (lambda p: _csv(p / "t.parquet", "FileName,BA0\na,1\n"), r"is not a readable Parquet file"),
    ],
)
def test_bad_tables_stop_with_one_line(tmp_path, write, message):
    with pytest.raises(UserError, match=message) as err:
        read_ba_table(write(tmp_path))
    assert "\n" not in str(err.value)


def test_labels_in_the_table_are_checked_as_a_labels_csv(tmp_path):
    table = _csv(tmp_path / "t.csv", "FileName,Speaker,BA0\na.wav,s1,0\nb.wav,s2,1\n")
    with pytest.raises(
        UserError, match=r"labels file .*t.csv has no Group column \(it has: FileName, Speaker\)"
    ):
        format_corpus(table, None, ba_table=table, progress=False)
    tables, report = format_corpus(table, None, ba_table=table, split=False, progress=False)
    assert (
        list(tables["all"].to_frame().columns) == ["FileName", "Speaker", "BA0"]
        and report.n_matched == 2
    )
    labels = _csv(tmp_path / "labels.csv", "FileName,Speaker,Group\nzz.wav,s1,Train\n")
    with pytest.raises(
        UserError,
        match=r"no FileName in .*labels.csv matched a row of BA table .*t.csv: e.g. "
        r"FileName 'zz.wav' vs table FileName 'a.wav'",
    ):
        format_corpus(labels, None, ba_table=table, progress=False)


@pytest.mark.parametrize(
    "data, message",
    [
        (
            {"ba_dir": "data/demo/ba", "ba_table": "t.parquet"},
            r"^params.yaml: data.ba_dir \(data/demo/ba\) and data.ba_table \(t.parquet\) "
            r"are both set; keep the one",
        ),
        (
            {"ba_dir": "", "ba_table": None},
            r"^params.yaml: neither data.ba_dir nor data.ba_table is set",
        ),
        ({"ba_dir": None}, r"^params.yaml: neither data.ba_dir nor data.ba_table is set"),
    ],
)
def test_both_or_neither_source_is_one_line_at_check(data, message):
    with pytest.raises(UserError, match=message) as err:
        settings_from_params({"data": data})
    assert "\n" not in str(err.value)


def test_sources_set_and_unset():
    s = settings_from_params({"data": {"ba_dir": "", "ba_table": "/x/t.parquet"}}).data
    assert s.ba_dir is None and s.ba_table == "/x/t.parquet"
    assert (
        settings_from_params({"data": {"ba_dir": None, "ba_table": "t.csv"}}).data.ba_table
        == "t.csv"
    )
    assert settings_from_params({}).data.ba_table is None
    check_dvc_sources({"data": {"ba_dir": "", "ba_table": "t.csv"}})
    with pytest.raises(
        UserError, match=r"data.ba_dir is null; under dvc repro write data.ba_dir: ''"
    ):
        check_dvc_sources({"data": {"ba_dir": None, "ba_table": "t.csv"}})
    with pytest.raises(UserError, match="give exactly one BA source"):
        format_corpus("labels.csv", "ba", ba_table="t.csv")


@pytest.mark.integration
def test_dvc_repro_format_from_a_folder_then_a_table(project_copy):
    """Both sources through `dvc repro`: the folder (table ''),
    then a table (folder ''), which DVC tracks."""
    proj = project_copy(SMALL_DEMO)
    run_cmd(["dvc", "repro", "format"], proj, timeout=600)
    lock = yaml.safe_load((proj / "dvc.lock").read_text())["stages"]["format"]
    assert "data/demo/ba" in {d["path"] for d in lock["deps"]}
    from_files = {
        p: (proj / "data" / p).read_bytes() for p in ("demo_train_data.csv", "demo_test_data.csv")
    }

    run_cmd(
        ["python", "-m", "smp_balr.data.make_table", "demo", "data/table/demo.parquet"],
        proj,
        timeout=300,
    )
    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["data"].update(
        {"ba_dir": "", "ba_table": "data/table/demo.parquet", "labels": "data/table/demo.parquet"}
    )
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run_cmd(["dvc", "repro", "format"], proj, timeout=600)
    assert "Running stage 'format'" in out.stdout and "Running stage 'demo'" not in out.stdout
    assert {
        p: (proj / "data" / p).read_bytes() for p in from_files
    } == from_files  # the same demo, same bytes
    lock = yaml.safe_load((proj / "dvc.lock").read_text())["stages"]["format"]
    assert "data/table/demo.parquet" in {d["path"] for d in lock["deps"]}
    assert "up to date" in run_cmd(["dvc", "status", "format"], proj, timeout=300).stdout
    # DVC tracks the table's content: a changed table reruns format
    t = pq.read_table(proj / "data" / "table" / "demo.parquet")
    flipped = pa.array((1 - t.column("BA0").to_numpy()).astype(np.int8))
    pq.write_table(
        t.set_column(t.schema.get_field_index("BA0"), "BA0", flipped),
        proj / "data" / "table" / "demo.parquet",
    )
    assert "modified" in run_cmd(["dvc", "status", "format"], proj, timeout=300).stdout
    # a null source key stops at check with one line (DVC would read it as 'None')
    params["data"]["ba_dir"] = None
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = run_cmd(["dvc", "repro", "format"], proj, check=False, timeout=600)
    assert (
        failed.returncode != 0
        and "error [check]: params.yaml: data.ba_dir is null" in failed.stderr
    )


@pytest.mark.parametrize(
    "name",
    [
        "a.wav",
        "spk1/a.wav",
        "spk1\\a.wav",
        "./spk1//a.b.wav",
        "a",
        "a.",
        ".hidden",
        "x/../a.wav",
        "spk1/",
        ".",
        "/abs/spk/a.wav",
        "//host/a.wav",
        "///a.wav",
        "a/./b/c.tar.gz",
        "..",
        "a..",
        "utt.3",
    ],
)
def test_file_name_parts_are_pathlibs(name):
    """The string split of FileName (fast on 1M names) gives what PurePosixPath gives."""
    from pathlib import PurePosixPath

    from smp_balr.data.bafiles import _name_parts

    p = PurePosixPath(name.replace("\\", "/"))
    expected = (
        [part for part in p.parent.parts if part not in ("/", ".", "")],
        p.name,
        p.stem if p.suffix else p.name,
    )
    assert _name_parts(name) == expected


def test_a_csv_of_floats_is_converted_block_by_block(tmp_path, monkeypatch):
    import smp_balr.data.batable as batable

    monkeypatch.setattr(batable, "_CSV_BLOCK_BYTES", 64)  # a few rows per block
    rows = [f"u{i}.wav,{i % 2}.0,{(i // 2) % 2}.0" for i in range(40)]
    path = _csv(tmp_path / "t.csv", "FileName,BA0,BA1\n" + "\n".join(rows) + "\n")
    table = read_ba_table(path)
    assert table.ba.dtype == np.int8 and table.ba.shape == (40, 2)
    assert np.array_equal(table.ba[:, 0], np.arange(40) % 2) and table.file_names[-1] == "u39.wav"
    rows[33] = "u33.wav,1.0,0.25"
    path.write_text("FileName,BA0,BA1\n" + "\n".join(rows) + "\n")
    with pytest.raises(UserError, match=r"column BA1 holds 0.25 on line 35 \(FileName 'u33.wav'\)"):
        read_ba_table(path)


def test_a_table_too_large_for_memory_stops_before_reading(tmp_path):
    csv_table = _csv(
        tmp_path / "t.csv", "FileName,BA0,BA1\n" + "".join(f"u{i}.wav,0,1\n" for i in range(1000))
    )
    parquet_table = _parquet(
        tmp_path / "t.parquet", {"FileName": [f"u{i}" for i in range(1000)], "BA0": [1] * 1000}
    )
    for table in (csv_table, parquet_table):
        with pytest.raises(
            UserError,
            match=r"reading BA table .* \(1,\d{3} rows x \d BAs\) needs about .* GB of memory",
        ):
            read_ba_table(table, memory_available=100)
        assert read_ba_table(table, memory_available=10**6).ba.shape[0] == 1000


def test_make_table_command(demo_files, tmp_path, capsys):
    from smp_balr.data.make_table import main

    labels, ba_dir = demo_files
    main(["files", str(labels), str(ba_dir), str(tmp_path / "t.parquet"), "--ba-only"])
    assert pq.read_schema(tmp_path / "t.parquet").names[:2] == ["FileName", "BA0"]
    assert read_ba_table(tmp_path / "t.parquet").ba.shape == (120, 40)
    with pytest.raises(SystemExit) as stop:
        main(["files", str(labels), str(ba_dir), str(tmp_path / "t.xlsx")])
    assert stop.value.code == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "error [make_table]: table "
            + str(tmp_path / "t.xlsx")
            + " must end in .parquet or .csv"
        )
    )

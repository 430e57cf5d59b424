"""Issue 21: no input runs a command, writes outside the project or ends in a traceback; the same
bytes whatever the BLAS threads; interrupts never end a stage with exit 0."""

from __future__ import annotations

import copy
import json
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from smp_balr.core.errors import UserError
from smp_balr.core.outputs import clean_project_leftovers, write_csv, write_json
from smp_balr.core.params import load_params
from smp_balr.core.settings import MAX_NAME, check_name, settings_from_params
from smp_balr.data.bafiles import MAX_BA_BYTES, read_ba_file
from smp_balr.data.formatting import read_labels

from conftest import ROOT, copy_project

PAYLOADS = [
    "x;touch PWNED1;",
    "$(touch PWNED2)",
    "`touch PWNED3`",
    "a|touch PWNED4",
    "quo'te;touch PWNED5;'",
]
MARKERS = [f"PWNED{i}" for i in range(1, 6)]


def _params(**changes) -> dict:
    params = copy.deepcopy(load_params(ROOT / "params.yaml"))
    params.update(changes)
    return params


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# ----------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "payload", PAYLOADS + ["Emo Class", "-rf", ".hidden", "a/b", "../../escaped", "x" * 65]
)
@pytest.mark.parametrize("where", ["label", "labels", "classes key", "classes value", "data.name"])
def test_every_name_that_reaches_a_command_or_path_is_plain(payload, where):
    if where == "label":
        params = _params(label=payload, labels=[payload])
    elif where == "labels":
        params = _params(labels=["EmoClass", payload])
    elif where == "classes key":
        params = _params(classes={payload: ["A", "B"]})
    elif where == "classes value":
        params = _params(classes={"EmoClass": ["A", payload]})
    else:
        params = _params(data={**load_params(ROOT / "params.yaml")["data"], "name": payload})
    with pytest.raises(UserError) as err:
        settings_from_params(params)
    line = _one_line(err)
    assert line.startswith("params.yaml: ") and "is not a plain name: " in line and "rename" in line
    assert repr(payload)[:40] in line


def test_name_line_says_which_why_and_how():
    with pytest.raises(UserError) as err:
        settings_from_params(_params(labels=["EmoClass", "x;touch PWNED1;"]))
    assert _one_line(err) == (
        "params.yaml: labels[2] 'x;touch PWNED1;' is not a plain name: it holds ';'; "
        "only letters, digits, '_', '-' and '.' are allowed; "
        "names reach commands and file names, so rename it in labels "
        "(and in the labels CSV, if it names a column), e.g. to 'x_touch_PWNED1' "
        "(letters, digits, '_', '-', '.'; no leading '-' or '.'; "
        f"at most {MAX_NAME} characters)"
    )


def test_plain_names_pass():
    for name in ["EmoClass", "Emo_Class-2.v1", "A", "9lives", "x" * MAX_NAME]:
        assert check_name(name, "here") == name


def test_labels_as_a_single_text_gives_our_line_not_dvcs():
    with pytest.raises(UserError) as err:
        settings_from_params(_params(labels="EmoClass"))
    assert _one_line(err).startswith(
        "params.yaml: labels must be a list of names such as [EmoClass], got the single text"
    )


@pytest.mark.parametrize("payload", PAYLOADS)
@pytest.mark.parametrize("stage", ["select", "common", "study", "associate"])
def test_stage_reads_its_item_from_its_name_and_refuses_a_payload(tmp_path, payload, stage):
    """The command of a foreach/matrix stage holds no name: the stage reads its label from the
    stage name DVC gives it (DVC_STAGE) and refuses one that is not plain; no marker appears,
    a quote in the name included (no shell ever sees it)."""
    proj = copy_project(tmp_path / "p")
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][stage]
    cmd = (spec.get("do") or spec)["cmd"]
    item = f"{payload}-all" if stage == "select" else payload
    env = {**os.environ, "PYTHONPATH": str(proj), "DVC_STAGE": f"{stage}@{item}"}
    proc = subprocess.run(
        ["/bin/sh", "-c", cmd], cwd=proj, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error [{stage}]: argument {payload!r} is not a plain name")
    )
    assert not [m for m in MARKERS if (proj / m).exists() or (tmp_path / m).exists()]


# ----------------------------------------------------------------------------------- upper bounds


@pytest.mark.parametrize(
    "dotted, value, line",
    [
        (
            "seed",
            2**32,
            "params.yaml: seed must be at most 4,294,967,295 (time and memory grow with it), "
            "got 4,294,967,296",
        ),
        (
            "test.n_permutations",
            10**9,
            "params.yaml: test.n_permutations must be at most 1,000,000",
        ),
        ("test.n_bootstrap", 10**9, "params.yaml: test.n_bootstrap must be at most 1,000,000"),
        ("model.mlp.hidden2", 10**9, "params.yaml: model.mlp.hidden2 must be at most 4,096"),
        (
            "model.mlp.hidden1_ratio",
            1000.0,
            "params.yaml: model.mlp.hidden1_ratio must be at most 8.0, got 1000.0",
        ),
        ("explain.n_samples", 10**9, "params.yaml: explain.n_samples must be at most 20,000"),
        (
            "explain.background_size",
            10**9,
            "params.yaml: explain.background_size must be at most 1,000",
        ),
        (
            "explain.kernel_nsamples",
            10**9,
            "params.yaml: explain.kernel_nsamples must be at most 100,000",
        ),
        ("explain.permutations", 10**9, "params.yaml: explain.permutations must be at most 1,000"),
        (
            "selection.slda.permutations",
            10**9,
            "params.yaml: selection.slda.permutations must be at most 100,000",
        ),
    ],
)
def test_counts_have_an_upper_bound(dotted, value, line):
    params = _params()
    node = params
    *parents, last = dotted.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    with pytest.raises(UserError) as err:
        settings_from_params(params)
    assert _one_line(err).startswith(line)


def test_kernel_work_is_bounded():
    params = _params()
    params["explain"] = {
        **params["explain"],
        "mlp_explainer": "kernel",
        "kernel_nsamples": 100_000,
        "background_size": 20,
    }
    with pytest.raises(UserError) as err:
        settings_from_params(params)
    assert _one_line(err).startswith(
        "params.yaml: explain.kernel_nsamples x explain.background_size is 2,000,000, "
        "above 1,000,000"
    )


def test_demo_size_is_bounded():
    params = _params()
    params["demo"] = {**params["demo"], "n_speakers": 10**6, "utterances_per_speaker": 10**6}
    with pytest.raises(UserError) as err:
        settings_from_params(params)
    assert _one_line(err).startswith(
        "params.yaml: the demo may have at most 10,000,000 utterances (n_speakers x "
        "utterances_per_speaker, got 1,000,000,000,000)"
    )


def test_largest_seed_is_accepted():
    assert settings_from_params(_params(seed=2**32 - 1)).seed == 2**32 - 1


def test_first_hidden_layer_is_bounded_at_build():
    from smp_balr.core.settings import MlpSettings
    from smp_balr.model.estimator import build_mlp

    with pytest.raises(
        UserError,
        match=r"first hidden layer of 8,000 units, above the maximum of 4,096; lower "
        r"model.mlp.hidden1_ratio to at most 2.05",
    ):
        build_mlp(2000, MlpSettings(hidden1_ratio=4.0), 0)


# ----------------------------------------------------------------------------------- BA files


def _read_in_subprocess(path: Path) -> subprocess.CompletedProcess:
    code = (
        "import sys; from smp_balr.data.bafiles import read_ba_file\n"
        "from smp_balr.core.errors import UserError\n"
        "try:\n    read_ba_file(sys.argv[1])\nexcept UserError as e:\n    print(e)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_fifo_is_refused_before_reading(tmp_path):
    fifo = tmp_path / "x_ba.txt"
    os.mkfifo(fifo)
    proc = _read_in_subprocess(fifo)  # a read would block: the timeout fails the test then
    assert proc.stdout.strip() == (
        f"BA file {fifo} is a FIFO (named pipe), not a regular file; "
        "replace it by balr's output or remove it"
    )


def test_device_link_and_folder_are_refused(tmp_path):
    link = tmp_path / "z_ba.txt"
    link.symlink_to("/dev/zero")
    proc = _read_in_subprocess(link)
    assert proc.stdout.strip() == (
        f"BA file {link} is a device (through a symbolic link to /dev/zero), not a regular file; "
        "replace it by balr's output or remove it"
    )
    folder = tmp_path / "d_ba.npy"
    folder.mkdir()
    with pytest.raises(UserError, match=r"is a folder, not a regular file"):
        read_ba_file(folder)


@pytest.mark.parametrize("link", [False, True])
def test_huge_file_is_refused_by_its_size(tmp_path, link):
    big = tmp_path / "big_ba.txt"
    with open(big, "wb") as fh:  # sparse: 2 GB that take no disk
        fh.truncate(2 * 1024**3)
    path = big
    if link:
        path = tmp_path / "l_ba.txt"
        path.symlink_to(big)
    with pytest.raises(UserError) as err:
        read_ba_file(path)
    assert _one_line(err) == (
        f"BA file {path} has 2,147,483,648 bytes, "
        f"more than a BA vector can take ({MAX_BA_BYTES:,}); "
        "it is not a balr BA file — re-extract it or remove it"
    )


def test_error_line_quotes_only_an_excerpt_of_the_content(tmp_path):
    path = tmp_path / "t_ba.txt"
    path.write_bytes(b"x" * (MAX_BA_BYTES - 10))
    with pytest.raises(UserError) as err:
        read_ba_file(path)
    line = _one_line(err)
    assert len(line) < 300 and "...(cut)" in line


def test_complex_strings_and_objects_are_not_bas(tmp_path):
    cplx = tmp_path / "c_ba.npy"
    np.save(cplx, np.array([1 + 1j, 0j, 1 + 0j]))
    texts = tmp_path / "s_ba.pkl"
    texts.write_bytes(pickle.dumps(["0", "1", "1"]))
    objs = tmp_path / "o_ba.pkl"
    objs.write_bytes(pickle.dumps(np.array([0, 1, 1], dtype=object)))
    for path, found in [
        (cplx, "ndarray of dtype complex128"),
        (texts, "list of dtype <U1"),
        (objs, "ndarray of dtype object"),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ComplexWarning: refused before any cast
            with pytest.raises(UserError) as err:
                read_ba_file(path)
        assert _one_line(err) == (
            f"BA file {path} does not hold real 0/1 numbers (found {found}); it is not a balr BA "
            "file — re-extract it or remove it"
        )
    ints = tmp_path / "i_ba.pkl"
    ints.write_bytes(pickle.dumps([0, 1, 1]))
    assert read_ba_file(ints).tolist() == [0, 1, 1]


# ----------------------------------------------------------------------------------- labels CSV


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "labels.csv"
    path.write_text(text)
    return path


def test_duplicated_column_names_are_named(tmp_path):
    path = _csv(tmp_path, "FileName,Speaker,Group,Emo,Lang,Emo\na.wav,s1,Train,A,fr,H\n")
    with pytest.raises(UserError) as err:
        read_labels(path, require_group=True)
    assert _one_line(err) == (
        f"labels file {path} has duplicated column name(s) 'Emo'; rename or remove the second of "
        "each (every column needs its own name)"
    )


@pytest.mark.parametrize("column", PAYLOADS[:4] + ["Emo Class"])
def test_label_column_names_are_plain(tmp_path, column):
    quoted = '"' + column + '"'
    path = _csv(tmp_path, f"FileName,Speaker,Group,{quoted}\na.wav,s1,Train,A\n")
    with pytest.raises(UserError) as err:
        read_labels(path, require_group=True)
    assert _one_line(err).startswith(
        f"labels file {path}: label column {column!r} is not a plain name: "
    )


@pytest.mark.parametrize(
    "value, why",
    [
        ("<script>alert(1)</script>", "'<'"),
        ("<img src=x onerror=alert(1)>", "'<'"),
        ("R&B", "'&'"),
        ('say ""hi""', "'\"'"),
        ("it's", '"\'"'),
        ("a|b", "'|'"),
        ("`x`", "'`'"),
        ("two\nlines", "the control character '\\n'"),
    ],
)
def test_class_values_with_markup_are_refused_with_label_value_and_line(tmp_path, value, why):
    cell = '"' + value + '"' if any(c in value for c in '"\n,') else value
    path = _csv(tmp_path, f"FileName,Speaker,Group,Emo\na.wav,s1,Train,A\nb.wav,s1,Train,{cell}\n")
    with pytest.raises(UserError) as err:
        read_labels(path, require_group=True)
    shown = value.replace('""', '"')
    assert _one_line(err).startswith(
        f"labels file {path}: label Emo has the class {shown!r} (first on line 3): it holds {why}; "
    )


def test_class_values_with_spaces_and_accents_are_fine(tmp_path):
    path = _csv(
        tmp_path, "FileName,Speaker,Group,Emo\na.wav,s1,Train,very happy\nb.wav,s2,Test,énervé\n"
    )
    assert read_labels(path, require_group=True)["Emo"].tolist() == ["very happy", "énervé"]


# ----------------------------------------------------------------------------------- same bytes

# a backslash ending a line below joins it to the next: the script run keeps its long lines
_RUN = """
import sys
import numpy as np, pandas as pd
from sklearn.linear_model import LogisticRegression
from smp_balr.core.outputs import write_csv, write_json
from benchmarks.support.planted import make_planted
from smp_balr.selection.slda import forward_stepwise

p = make_planted(n_speakers=24, per_speaker=60, n_ba=96, n_planted=8, seed=5)
names = [c for c in p.table.columns if c.startswith("BA")]
X, y = p.table[names].to_numpy(float), p.table["Label"].to_numpy()
X = X - X.mean(axis=0)
res = forward_stepwise(X, y, names, p_enter=0.05, correction="none", max_features=20)
probe = LogisticRegression(C=0.1, max_iter=2000).fit(X, y)
out = sys.argv[1]
write_csv(pd.DataFrame(probe.predict_proba(X), columns=[str(c) for c in probe.classes_]), \
out + "/proba.csv")
write_csv(pd.DataFrame(probe.coef_.T, index=names), out + "/coef.csv", index=True)
write_json({"coef": probe.coef_, "gram": (X.T @ X)[:8, :8], \
"selected": list(getattr(res, "selected", []))}, out + "/fit.json")
big = np.random.default_rng(0).random((600, 600))
product = big @ big  \
# split differently per BLAS thread count: a third of its values differ in the last bit
write_csv(pd.DataFrame(product[:10]), out + "/product.csv")
np.save(out + "/raw.npy", product[:10])
"""


def test_text_outputs_are_the_same_bytes_whatever_the_blas_threads(tmp_path):
    outs = []
    for threads in ("1", "2"):
        out = tmp_path / f"t{threads}"
        out.mkdir()
        env = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": threads,
            "OMP_NUM_THREADS": threads,
            "MKL_NUM_THREADS": threads,
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run(
            [sys.executable, "-c", _RUN, str(out)], env=env, cwd=ROOT, check=True, timeout=300
        )
        outs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    raw = [
        o.pop("raw.npy") for o in outs
    ]  # differ on a multi-core machine (measured: 35% of the values)
    assert set(outs[0]) == {"proba.csv", "coef.csv", "fit.json", "product.csv"}
    assert outs[0] == outs[1], f"raw values {'differ' if raw[0] != raw[1] else 'agree'}"


def test_last_bit_noise_does_not_change_the_bytes(tmp_path):
    values = np.random.default_rng(0).random((50, 3))
    noisy = values * (1 + 2.2e-16 * np.random.default_rng(1).choice([-1, 1], values.shape))
    assert not np.array_equal(values, noisy)
    write_csv(pd.DataFrame(values), tmp_path / "a.csv")
    write_csv(pd.DataFrame(noisy), tmp_path / "b.csv")
    write_json({"v": values, "x": float(values[0, 0])}, tmp_path / "a.json")
    write_json({"v": noisy, "x": float(noisy[0, 0])}, tmp_path / "b.json")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    back = json.loads((tmp_path / "a.json").read_text())
    assert back["x"] == pytest.approx(values[0, 0], rel=1e-9) and back["x"] != values[0, 0]


# ----------------------------------------------------------------------------------- faults


def test_leftover_temporaries_are_removed_by_check(tmp_path):
    proj = copy_project(tmp_path / "p")
    leftovers = [
        proj / "metrics" / ".explain.ab12cd34.tmp",
        proj / "metrics" / ".explain.json.x9y8z7w6.tmp",
        proj / "features" / ".EmoClass_all_features.csv.q1w2e3r4.tmp",
        proj / "metrics" / "selection" / ".EmoClass_slda_table.csv.abcdefgh.tmp",
    ]
    leftovers[0].mkdir(parents=True)
    (leftovers[0] / "shap_A.csv").write_text("partial")
    for p in leftovers[1:]:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("partial")
    keep = proj / "metrics" / "notes.tmp"
    keep.write_text("not ours")
    env = {**os.environ, "PYTHONPATH": str(proj)}
    proc = subprocess.run(
        [sys.executable, "-m", "stages.check"],
        cwd=proj,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert [p for p in leftovers if os.path.lexists(p)] == []
    assert keep.exists()


def test_leftover_held_by_a_living_writer_stays(tmp_path, monkeypatch):
    import fcntl

    (tmp_path / "metrics").mkdir()
    live = tmp_path / "metrics" / ".test.json.abcdefgh.tmp"
    live.write_text("being written")
    fd = os.open(live, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        monkeypatch.chdir(tmp_path)
        assert clean_project_leftovers() == []
        assert live.exists()
    finally:
        os.close(fd)


def test_cache_never_shares_inodes_with_the_workspace():
    config = (ROOT / ".dvc" / "config").read_text()
    line = next(ln for ln in config.splitlines() if ln.strip().startswith("type"))
    kinds = {k.strip() for k in line.split("=", 1)[1].strip().strip('"').split(",")}
    assert kinds and kinds <= {"reflink", "copy"}


def test_interrupt_inside_the_mlp_fit_is_an_interrupt(monkeypatch):
    from sklearn.neural_network import MLPClassifier

    from smp_balr.core.settings import MlpSettings
    from smp_balr.model.estimator import fit_mlp

    calls = {"n": 0}
    original = MLPClassifier._backprop

    def backprop(self, *args, **kwargs):  # Ctrl-C arrives inside scikit-learn's minibatch loop
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MLPClassifier, "_backprop", backprop)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (400, 12)).astype(float)
    y = np.array([0, 1] * 200)
    groups = np.repeat(np.arange(20), 20)
    for early in (1, 0):
        calls["n"] = 0
        with pytest.raises(KeyboardInterrupt):
            fit_mlp(X, y, groups, MlpSettings(max_iter=5, early_stopping=early), balance=0, seed=0)
        assert calls["n"] == 5  # nothing trained after the interrupt


def test_stage_interrupted_exits_130_with_its_line(tmp_path):
    code = (
        "from smp_balr.core.cli import run\nfrom smp_balr.core.outputs import write_json\n"
        "def main():\n    write_json({'a': 1}, 'out.json')\n    raise KeyboardInterrupt\n"
        "run(main, 'train')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 130 and proc.stderr.strip() == "error [train]: interrupted"
    assert not (tmp_path / "out.json").exists()


def test_any_stage_run_by_dvc_removes_leftovers_first(tmp_path):
    """A stage restored from DVC's run cache never writes:
    the next stage DVC runs removes what it left."""
    leftover = tmp_path / "metrics" / "explain" / ".beeswarm_A.png.k3j4h5g6.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_text("partial")
    code = "from smp_balr.core.cli import run\nrun(lambda: None, 'demo')\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DVC_STAGE": "demo"}
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert not leftover.exists() and "left by an interrupted run" in proc.stderr


def test_interrupt_swallowed_by_a_library_still_fails_the_stage(tmp_path):
    """pymc's ADVI/NUTS loops catch KeyboardInterrupt and return partial results:
    the stage must not succeed."""
    code = (
        "import os, signal\nfrom smp_balr.core.cli import run\n"
        "from smp_balr.core.outputs import write_json\n"
        "def main():\n    try:\n        os.kill(os.getpid(), signal.SIGINT)\n"
        "    except KeyboardInterrupt:\n        pass\n"
        "    write_json({'partial': True}, 'out.json')\nrun(main, 'select')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 130 and proc.stderr.strip() == "error [select]: interrupted"
    assert not (tmp_path / "out.json").exists()

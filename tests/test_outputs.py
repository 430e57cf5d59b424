"""Outputs written all together or not at all, leftovers of killed runs,
permissions, write errors."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

from smp_balr.core import outputs
from smp_balr.core.errors import UserError
from smp_balr.core.outputs import (
    atomic_dir,
    atomic_path,
    clean_stale_temporaries,
    transaction,
    write_csv,
    write_json,
)

ROOT = Path(__file__).resolve().parents[1]


def _leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.name.endswith(".tmp"))


def _previous(root: Path) -> None:
    """Outputs of an earlier run: a file, a JSON file and a folder."""
    (root / "out" / "dir").mkdir(parents=True)
    (root / "out" / "a.csv").write_text("OLD\n")
    (root / "out" / "m.json").write_text('{"v": "old"}\n')
    (root / "out" / "dir" / "x.txt").write_text("old x\n")
    (root / "out" / "dir" / "only_old.txt").write_text("old\n")


def _assert_previous(root: Path) -> None:
    assert (root / "out" / "a.csv").read_text() == "OLD\n"
    assert json.loads((root / "out" / "m.json").read_text()) == {"v": "old"}
    assert sorted(p.name for p in (root / "out" / "dir").iterdir()) == ["only_old.txt", "x.txt"]
    assert (root / "out" / "dir" / "x.txt").read_text() == "old x\n"


# ---------------------------------------------------------------------------------------
# all together or not at all
# ---------------------------------------------------------------------------------------
def test_set_replaced_together(tmp_path: Path) -> None:
    _previous(tmp_path)
    out = tmp_path / "out"
    with transaction() as tx:
        tx.file(out / "a.csv").write_text("NEW\n")
        write_json({"v": "new"}, out / "m.json")  # joins the open transaction
        d = tx.directory(out / "dir")
        (d / "x.txt").write_text("new x\n")
        (d / "sub").mkdir()
        (d / "sub" / "y.txt").write_text("y\n")
        write_csv(pd.DataFrame({"a": [1]}), out / "new" / "t.csv")  # a new folder is made
        # nothing is in place before the whole body succeeded
        _assert_previous(tmp_path)
        assert not (out / "new" / "t.csv").exists()
    assert (out / "a.csv").read_text() == "NEW\n"
    assert json.loads((out / "m.json").read_text()) == {"v": "new"}
    assert sorted(p.name for p in (out / "dir").iterdir()) == [
        "sub",
        "x.txt",
    ]  # the folder is replaced, not merged
    assert (out / "dir" / "sub" / "y.txt").read_text() == "y\n"
    assert pd.read_csv(out / "new" / "t.csv")["a"].tolist() == [1]
    assert _leftovers(tmp_path) == []


def test_failure_keeps_every_previous_output(tmp_path: Path) -> None:
    _previous(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="model failed"):
        with transaction() as tx:
            tx.file(out / "a.csv").write_text("NEW\n")
            with atomic_dir(out / "dir") as d:
                (d / "x.txt").write_text("new x\n")
            write_json({"v": "new"}, out / "m.json")
            tx.file(out / "only_new.txt").write_text("new\n")
            raise RuntimeError("model failed")
    _assert_previous(tmp_path)
    assert not (out / "only_new.txt").exists()
    assert _leftovers(tmp_path) == []


def test_single_writers_alone_are_atomic(tmp_path: Path) -> None:
    _previous(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(ValueError):
        with atomic_path(out / "a.csv") as tmp:
            tmp.write_text("half")
            raise ValueError
    with pytest.raises(ValueError):
        with atomic_dir(out / "dir") as tmp:
            (tmp / "x.txt").write_text("half")
            raise ValueError
    _assert_previous(tmp_path)
    with atomic_path(out / "a.csv") as tmp:
        tmp.write_text("NEW\n")
    assert (out / "a.csv").read_text() == "NEW\n"
    assert _leftovers(tmp_path) == []


def test_commit_failure_rolls_back_the_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up while the set is moved into place: the outputs already moved go back."""
    _previous(tmp_path)
    out = tmp_path / "out"
    real_replace = os.replace
    moves: list[str] = []

    def replace(src, dst):
        if Path(dst).name == "z_last.txt":
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        moves.append(Path(dst).name)
        return real_replace(src, dst)

    with pytest.raises(
        UserError, match=r"cannot write output .*z_last\.txt: no space left on the device"
    ):
        with transaction() as tx:
            tx.file(out / "a.csv").write_text("NEW\n")
            (tx.directory(out / "dir") / "x.txt").write_text("new x\n")
            tx.file(out / "m.json").write_text('{"v": "new"}\n')
            tx.file(out / "brand_new.txt").write_text("new\n")
            tx.file(out / "z_last.txt").write_text("new\n")
            monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(os, "replace", real_replace)
    assert {"a.csv", "dir", "m.json", "brand_new.txt"} <= set(
        moves
    )  # they had been moved before the failure
    _assert_previous(tmp_path)
    assert not (out / "brand_new.txt").exists()
    assert _leftovers(tmp_path) == []


def test_nested_transactions_join(tmp_path: Path) -> None:
    with pytest.raises(KeyError):
        with transaction() as outer:
            with transaction() as inner:
                assert inner is outer
                inner.file(tmp_path / "a.txt").write_text("a")
            assert not (tmp_path / "a.txt").exists()  # the inner block does not commit on its own
            raise KeyError("x")
    assert not (tmp_path / "a.txt").exists()
    assert _leftovers(tmp_path) == []


def test_written_twice_the_last_wins(tmp_path: Path) -> None:
    with transaction():
        write_json({"n": 1}, tmp_path / "m.json")
        write_json({"n": 2}, tmp_path / "m.json")
    assert json.loads((tmp_path / "m.json").read_text()) == {"n": 2}
    assert _leftovers(tmp_path) == []


def test_file_and_folder_not_confused(tmp_path: Path) -> None:
    (tmp_path / "m.json").mkdir()
    with pytest.raises(UserError, match=r"m\.json: a folder of that name is in the way"):
        write_json({}, tmp_path / "m.json")
    (tmp_path / "d").write_text("x")
    with pytest.raises(UserError, match=r"output .*d: a file of that name is in the way"):
        with atomic_dir(tmp_path / "d"):
            pass
    assert (tmp_path / "d").read_text() == "x" and (tmp_path / "m.json").is_dir()


# ---------------------------------------------------------------------------------------
# permissions: the user's umask, not tempfile's 0600/0700
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_get_the_umask(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        assert outputs.current_umask() == umask
        with transaction() as tx:
            tx.file(tmp_path / "f.txt").write_text("x")
            write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
            d = tx.directory(tmp_path / "dir")
            (d / "inside.txt").write_text("x")
        reference = tmp_path / "plain.txt"
        reference.write_text("x")  # what any file the user writes gets
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "f.txt") == 0o666 & ~umask == mode(reference)
    assert mode(tmp_path / "t.csv") == 0o666 & ~umask
    assert mode(tmp_path / "dir") == 0o777 & ~umask
    assert mode(tmp_path / "dir" / "inside.txt") == 0o666 & ~umask


# ---------------------------------------------------------------------------------------
# write errors: one line naming the output
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, fragment",
    [
        (errno.ENOSPC, "no space left on the device"),
        (errno.EDQUOT, "disk quota exceeded"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied; make"),
    ],
)
def test_errors_while_writing_name_the_output(tmp_path: Path, code: int, fragment: str) -> None:
    _previous(tmp_path)
    out = tmp_path / "out"
    # the error names the temporary (e.g. from open()): reported as the output it stands for
    with pytest.raises(UserError) as info:
        with transaction() as tx:
            tmp = tx.file(out / "a.csv")
            raise OSError(code, os.strerror(code), str(tmp))
    msg = str(info.value)
    assert (
        msg.startswith(f"cannot write output {out / 'a.csv'}: ")
        and fragment in msg
        and "\n" not in msg
    )
    assert ".tmp" not in msg
    # a file inside a temporary folder, and an error without a file name (a failed flush)
    with pytest.raises(UserError, match=rf"output {out / 'dir' / 'p.png'}: .*{fragment}"):
        with transaction() as tx:
            d = tx.directory(out / "dir")
            raise OSError(code, os.strerror(code), str(d / "p.png"))
    with pytest.raises(UserError, match=rf"output {out / 'm.json'}: .*{fragment}"):
        with transaction() as tx:
            tx.file(out / "m.json")
            raise OSError(code, os.strerror(code))
    _assert_previous(tmp_path)
    assert _leftovers(tmp_path) == []


def test_other_errors_pass_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        with transaction() as tx:
            tx.file(tmp_path / "a.txt")
            (tmp_path / "missing_input.csv").read_text()  # an input's error is not an output's


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_real(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    (folder / "train.json").write_text("{}")
    folder.chmod(0o555)
    try:
        with pytest.raises(
            UserError, match=rf"cannot write output {folder / 'train.json'}: permission denied"
        ):
            write_json({"a": 1}, folder / "train.json")
    finally:
        folder.chmod(0o755)
    assert (folder / "train.json").read_text() == "{}"


def _run_py(code: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


def test_file_too_large_is_one_line_exit_2(tmp_path: Path) -> None:
    """A real write failure (the file-size limit) through a stage entry point."""
    (tmp_path / "big.bin").write_bytes(b"old")
    proc = _run_py(
        """
        import resource, signal
        from smp_balr.core.cli import run
        from smp_balr.core.outputs import atomic_path
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
        def main():
            with atomic_path("big.bin") as tmp:
                with open(tmp, "wb") as fh:
                    for _ in range(100):
                        fh.write(b"x" * 10_000)
        run(main, "demo")
        """,
        tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error [demo]: cannot write output big.bin: file too large"
    ), proc.stderr
    assert (tmp_path / "big.bin").read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


# ---------------------------------------------------------------------------------------
# leftovers of killed runs
# ---------------------------------------------------------------------------------------
def test_stale_leftovers_removed_live_ones_kept(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("OLD\n")
    stale_file = tmp_path / ".a.csv.k3j_9zqa.tmp"
    stale_file.write_text("half")
    stale_dir = tmp_path / ".dir.x8d7f6g5.tmp"
    stale_dir.mkdir()
    (stale_dir / "f.txt").write_text("half")
    unrelated = [
        tmp_path / ".a.csv.notes.tmp",
        tmp_path / "a.csv.bak",
        tmp_path / ".a.csv.b.k3j_9zqa.tmp",
    ]
    for p in unrelated:
        p.write_text("keep")
    with transaction() as tx:
        live = tx.file(tmp_path / "b.csv")
        live.write_text("being written")
        # another process (or this one) cleaning now must not take a temporary in use
        assert clean_stale_temporaries([tmp_path / "b.csv"]) == []
        assert live.exists()
        removed = clean_stale_temporaries([tmp_path / "a.csv", tmp_path / "dir"])
    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert not stale_file.exists() and not stale_dir.exists()
    assert all(p.read_text() == "keep" for p in unrelated)
    assert (tmp_path / "a.csv").read_text() == "OLD\n" and (
        tmp_path / "b.csv"
    ).read_text() == "being written"


def test_folder_swap_cut_short_is_restored(tmp_path: Path) -> None:
    """Killed between 'move the old folder aside' and 'move the new one in'."""
    backup = tmp_path / ".explain.q1w2e3r4.old.tmp"
    backup.mkdir()
    (backup / "importance.csv").write_text("old")
    half_new = tmp_path / ".explain.q1w2e3r4.tmp"
    half_new.mkdir()
    clean_stale_temporaries([tmp_path / "explain"])
    assert (tmp_path / "explain" / "importance.csv").read_text() == "old"
    assert _leftovers(tmp_path) == []


WRITER = """
import sys, time
from smp_balr.core.cli import run
from smp_balr.core.outputs import transaction, write_json


def main():
    with transaction() as tx:
        d = tx.directory("out/dir")
        (d / "x.txt").write_text("new x\\n")
        write_json({"v": "new"}, "out/m.json")
        tx.file("out/a.csv").write_text("NEW\\n")
        with open(tx.file("out/big.bin"), "wb") as fh:
            chunk = b"x" * (1 << 20)
            fh.write(chunk)
            fh.flush()
            print("writing", flush=True)
            while sys.argv[1] == "hang":  # a big output still being written when the signal comes
                fh.write(chunk)
                time.sleep(0.02)


run(main, "writer")
"""


def _git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True, timeout=60
    ).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_mid_write(tmp_path: Path, sig: int) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    _previous(repo)
    (repo / "out" / "big.bin").write_bytes(b"old big")
    (repo / "writer.py").write_text(WRITER)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "previous outputs")

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "writer.py", "hang"], cwd=repo, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.2)
        proc.send_signal(sig)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    _assert_previous(repo)
    assert (repo / "out" / "big.bin").read_bytes() == b"old big"
    left = _leftovers(repo)
    if sig == signal.SIGKILL:  # nothing can clean up after SIGKILL: the temporaries stay ...
        assert proc.returncode == -sig
        assert any(name.startswith("out/.big.bin.") for name in left), left
    else:  # SIGTERM (what a scheduler or `kill` sends) ends the stage through its clean-up
        assert proc.returncode == 143
        assert left == []
    assert _git(repo, "status", "--porcelain") == ""  # ... ignored by git

    done = subprocess.run(
        [sys.executable, "writer.py", "once"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert _leftovers(repo) == []  # the next run removed them
    status = _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert status and all(line.startswith(" M ") or line.startswith(" D ") for line in status), (
        status
    )
    assert not any(line.startswith("??") for line in status)
    assert (repo / "out" / "a.csv").read_text() == "NEW\n"
    assert (repo / "out" / "big.bin").stat().st_size == 1 << 20


@pytest.mark.parametrize(
    "err, line",
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "metrics/train.json"),
            "error [st]: cannot write output metrics/train.json: no space left on the device",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            "error [st]: No space left on device while writing outputs",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "data/x.csv"),
            "error [st]: cannot access data/x.csv: permission denied",
        ),
    ],
)
def test_cli_run_file_system_errors_one_line(err: OSError, line: str, capsys) -> None:
    """Errors outside a transaction (e.g. a library writing on its own)
    still end as one line, exit 2."""
    import signal as sig

    from smp_balr.core.cli import run

    before = sig.getsignal(sig.SIGTERM)

    def main() -> None:
        raise err

    with pytest.raises(SystemExit) as info:
        run(main, "st")
    assert info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert sig.getsignal(sig.SIGTERM) == before  # the stage's SIGTERM handler does not outlive it


def test_cli_run_other_os_errors_are_bugs() -> None:
    from smp_balr.core.cli import run

    def main() -> None:
        raise FileNotFoundError(errno.ENOENT, "No such file", "x")

    with pytest.raises(FileNotFoundError):
        run(main, "st")


def test_stage_outputs_are_one_set_through_cli_run(
    tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage writes its model, then fails on its metrics: neither output is replaced
    (issue: model vs train.json)."""
    from smp_balr.core.cli import run

    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model.joblib").write_text("old dt model")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "train.json").write_text('{"model": "dt"}\n')

    def main() -> None:
        with atomic_path("models/model.joblib") as tmp:
            tmp.write_text("new mlp model")
        write_json({"model": "mlp"}, "metrics/extra.json")
        raise UserError("metrics cannot be computed")

    with pytest.raises(SystemExit) as info:
        run(main, "train")
    assert info.value.code == 2
    assert capsys.readouterr().err.strip() == "error [train]: metrics cannot be computed"
    assert (tmp_path / "models" / "model.joblib").read_text() == "old dt model"
    assert not (tmp_path / "metrics" / "extra.json").exists()
    assert _leftovers(tmp_path) == []

    def good() -> None:
        with atomic_path("models/model.joblib") as tmp:
            tmp.write_text("new mlp model")
        write_json({"model": "mlp"}, "metrics/train.json")

    run(good, "train")
    assert (tmp_path / "models" / "model.joblib").read_text() == "new mlp model"
    assert json.loads((tmp_path / "metrics" / "train.json").read_text()) == {"model": "mlp"}


def test_writes_inside_a_temporary_folder_go_straight_in(tmp_path):
    target = tmp_path / "plots"
    with transaction():
        with atomic_dir(target) as folder:
            with atomic_path(folder / "a.png") as inner:
                assert inner == folder / "a.png"  # no temporary of a temporary
                inner.write_bytes(b"png")
    assert [p.name for p in target.iterdir()] == ["a.png"] and (
        target / "a.png"
    ).read_bytes() == b"png"
    assert [p.name for p in tmp_path.iterdir()] == ["plots"]


def test_a_stage_ends_with_its_time_and_peak_memory(tmp_path: Path) -> None:
    """The last line of a stage that succeeded: its time, its own peak and its workers'."""
    proc = _run_py(
        """
        import numpy as np
        from joblib import Parallel, delayed
        from smp_balr.core.cli import run

        def main():
            Parallel(n_jobs=2)(delayed(lambda: float(np.ones(40_000_000).sum()))() for _ in "ab")

        run(main, "probe")
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    found = re.search(
        r"probe: done in [\d.]+ s, peak memory ([\d,]+) MB \(its largest worker ([\d,]+) MB\)$",
        last,
    )
    assert found, last
    # each worker held a 320 MB array: the workers' peak is counted, not only this process's
    assert int(found.group(2).replace(",", "")) >= 320

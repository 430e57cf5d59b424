"""Writing a stage's outputs: all together or not at all, with the user's permissions.

Every output (file or folder) is written to a temporary beside its target, named
``.<name>.<8 random characters>.tmp``, and renamed into place only when the whole body of
a :func:`transaction` succeeded; on any failure every temporary is removed and every
previous output stays. ``atomic_path``, ``atomic_dir``, ``write_csv`` and ``write_json``
used inside an open transaction join it, so wrapping a stage body in
``with transaction():`` makes all of its outputs one set.

A run killed by ``kill -9`` cannot remove its temporaries: the next transaction writing the
same targets removes them (``.gitignore`` hides them meanwhile). A temporary in use is
protected by an advisory lock (``flock``) that its writer holds while it lives, so only the
leftovers of dead processes are removed. A folder output whose replacement was cut short
between its two renames is put back from its backup (``.<name>.<random>.old.tmp``).

Temporaries are created with the modes any file the user writes gets (0666 / 0777 less
the umask), not the 0600 / 0700 of :mod:`tempfile`. Errors writing outputs (permission,
disk full, read-only file system) become one :class:`~smp_balr.core.errors.UserError` line
naming the output.
"""

from __future__ import annotations

import contextvars
import errno
import json
import logging
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from smp_balr.core.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: leftovers are then never removed automatically
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

TMP_SUFFIX = ".tmp"
OLD_SUFFIX = ".old.tmp"
_RANDOM = r"[a-z0-9_]{8}"  # tempfile's random part

# the transaction a `with transaction():` block has open in this thread/task, if any
_ACTIVE: contextvars.ContextVar["OutputSet | None"] = contextvars.ContextVar(
    "smp_balr_output_set", default=None
)


# ---------------------------------------------------------------------------------------
# permissions
# ---------------------------------------------------------------------------------------
def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux).

    Elsewhere it is set and restored at once, which another thread creating a file in
    that instant could notice.
    """
    try:
        with open("/proc/self/status", "rb") as fh:
            for line in fh:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def normal_mode(is_dir: bool) -> int:
    """The mode a new file (0666) or folder (0777) gets under the current umask."""
    return (0o777 if is_dir else 0o666) & ~current_umask()


# ---------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------
_WRITE_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


def write_error(err: OSError, path: str | Path) -> UserError:
    """One line saying why output ``path`` cannot be written and what to do.

    Parameters
    ----------
    err : OSError
        The error raised while writing.
    path : str or Path
        The output (target, not its temporary) to name.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) not in ("", ".") else Path(".")
    hints = {
        errno.EACCES: (
            f"permission denied; make {folder} writable for you (e.g. chmod u+w {folder}) "
            "or work in a copy you own"
        ),
        errno.ENOSPC: (
            "no space left on the device; free space there (or move the project to a larger disk) "
            "and rerun"
        ),
        errno.EDQUOT: "disk quota exceeded; free space within your quota and rerun",
        errno.EROFS: (
            "the file system is read-only; run the pipeline in a writable copy of the project"
        ),
        errno.EFBIG: (
            "file too large for the file system or your file-size limit (ulimit -f); "
            "raise the limit and rerun"
        ),
        errno.EISDIR: (
            f"a folder of that name is in the way; move {path} away "
            "(it is not an output of this project)"
        ),
        errno.ENOTDIR: (
            f"a file of that name is in the way; move {path} away "
            "(it is not an output of this project)"
        ),
    }
    hints[errno.EPERM] = hints[errno.EACCES]
    hint = hints.get(err.errno or 0) or (
        f"{err.strerror or type(err).__name__}; check that {folder} is writable and has free space"
    )
    return UserError(f"cannot write output {path}: {hint}")


# ---------------------------------------------------------------------------------------
# leftovers of killed runs
# ---------------------------------------------------------------------------------------
def _lock(path: Path) -> int | None:
    """Open ``path`` (file or folder) and take its advisory lock; None if impossible."""
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)  # closing releases the flock
        except OSError:
            pass


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def _leftover_patterns(name: str) -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(temporary, backup) name patterns of output ``name``, including earlier versions' names."""
    n = re.escape(name)
    tmp = re.compile(
        rf"^\.{n}\.{_RANDOM}(\.tmp)?$"
    )  # no suffix: the demo's folder temporaries before
    old = re.compile(rf"^\.{n}\.(({_RANDOM}\.old\.tmp)|(old(\.\d+)?))$")
    return tmp, old


def clean_stale_temporaries(paths: Iterable[str | Path]) -> list[Path]:
    """Remove the temporaries that killed runs left beside the outputs ``paths``.

    A temporary is stale when no living process holds its lock. A stale backup of a
    folder output (``.<name>.<random>.old.tmp``) is renamed back to ``<name>`` when
    ``<name>`` is missing (the run died between the two renames of a folder swap), and
    removed otherwise.

    Parameters
    ----------
    paths : iterable of str or Path
        Outputs (targets) whose folders are searched for their own leftovers.

    Returns
    -------
    list of Path
        The leftovers removed or restored.
    """
    if fcntl is None:
        return []
    handled: list[Path] = []
    for target in map(Path, paths):
        folder = target.parent
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        tmp_re, old_re = _leftover_patterns(target.name)
        for name in sorted(names):
            is_tmp, is_old = bool(tmp_re.match(name)), bool(old_re.match(name))
            if not (is_tmp or is_old):
                continue
            leftover = folder / name
            fd = _lock(leftover)
            if fd is None:  # in use by a living writer, or not ours to open
                continue
            try:
                if is_old and not os.path.lexists(target):
                    os.replace(leftover, target)
                    log.warning("restored %s from %s, left by an interrupted run", target, leftover)
                else:
                    _remove(leftover)
                    log.info("removed %s, left by an interrupted run", leftover)
                handled.append(leftover)
            except OSError as err:
                log.warning("could not remove %s (%s)", leftover, err.strerror)
            finally:
                _unlock(fd)
    return handled


_ANY_LEFTOVER = re.compile(rf"^\.(?P<name>.+)\.{_RANDOM}(\.old)?\.tmp$")


def clean_project_leftovers(folders: Iterable[str | Path] | None = None) -> list[Path]:
    """Remove the temporaries of killed runs beside every output of the project.

    A stage that DVC restores from its run cache never writes, so the leftovers of an
    earlier, killed run of it would stay; the ``check`` stage and every stage run under
    DVC call this first, whatever the state of the other stages.

    Parameters
    ----------
    folders : iterable of str or Path, optional
        Folders searched (not recursively); default :data:`smp_balr.core.paths.OUTPUT_FOLDERS`
        and the sub-folders of ``metrics/``.

    Returns
    -------
    list of Path
        The leftovers removed or restored (see :func:`clean_stale_temporaries`).
    """
    if folders is None:
        from smp_balr.core import paths

        folders = list(paths.OUTPUT_FOLDERS)
        if paths.METRICS.is_dir():
            folders += sorted(
                p for p in paths.METRICS.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
    targets: list[Path] = []
    for folder in map(Path, folders):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        targets += [folder / m.group("name") for m in map(_ANY_LEFTOVER.match, sorted(names)) if m]
    return clean_stale_temporaries(dict.fromkeys(targets))


# ---------------------------------------------------------------------------------------
# the transaction
# ---------------------------------------------------------------------------------------
def _check_kind(path: Path, is_dir: bool) -> None:
    """Refuse to replace a folder by a file or a file by a folder (one-line UserError)."""
    if os.path.lexists(path) and not path.is_symlink() and path.is_dir() != is_dir:
        code = errno.EISDIR if path.is_dir() else errno.ENOTDIR
        raise write_error(OSError(code, os.strerror(code), str(path)), path)


@dataclass
class _Entry:
    target: Path
    tmp: Path
    is_dir: bool
    fd: int | None  # lock on the temporary
    backup: Path | None = None
    backup_fd: int | None = None
    committed: bool = False


class OutputSet:
    """Outputs being written as one set; obtain one from :func:`transaction`."""

    def __init__(self) -> None:
        self._entries: dict[Path, _Entry] = {}

    # -- registering outputs ---------------------------------------------------------
    def file(self, path: str | Path) -> Path:
        """A fresh temporary file to write output file ``path`` to (committed with the set)."""
        return self._new(Path(path), is_dir=False)

    def directory(self, path: str | Path) -> Path:
        """A fresh, empty temporary folder to fill in place of output folder ``path``."""
        return self._new(Path(path), is_dir=True)

    @property
    def targets(self) -> list[Path]:
        """The outputs registered so far, in registration order."""
        return [e.target for e in self._entries.values()]

    def _inside_temporary(self, path: Path) -> bool:
        """Whether ``path`` lies in a temporary folder of this set.

        Such a path is committed with that folder.
        """
        p = path.absolute()
        return any(e.is_dir and e.tmp.absolute() in p.parents for e in self._entries.values())

    def _new(self, path: Path, is_dir: bool) -> Path:
        if self._inside_temporary(path):
            if is_dir:
                path.mkdir(parents=True, exist_ok=True)
            return path
        _check_kind(path, is_dir)
        key = path.absolute()
        if key in self._entries:  # written twice: the later one wins
            self._discard(self._entries.pop(key))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            clean_stale_temporaries([path])
            if is_dir:
                tmp = Path(
                    tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
                )
            else:
                fd, name = tempfile.mkstemp(
                    prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent
                )
                os.close(fd)
                tmp = Path(name)
        except OSError as err:
            raise write_error(err, path) from None
        entry = _Entry(target=path, tmp=tmp, is_dir=is_dir, fd=_lock(tmp))
        self._entries[key] = entry
        try:
            os.chmod(tmp, normal_mode(is_dir))
        except OSError as err:
            raise write_error(err, path) from None
        return tmp

    # -- errors inside the body --------------------------------------------------------
    def output_of(self, filename: str | os.PathLike | None) -> Path | None:
        """The output a path of the body's error belongs to (a temporary or a file inside one)."""
        if filename is None:
            return None
        p = Path(os.fsdecode(filename)).absolute()
        for e in self._entries.values():
            tmp = e.tmp.absolute()
            if p == tmp:
                return e.target
            if e.is_dir and tmp in p.parents:
                return e.target / p.relative_to(tmp)
        return None

    def user_error(self, err: OSError) -> UserError | None:
        """``err`` as one line naming the output, or None when it is not about writing outputs."""
        target = self.output_of(err.filename) or self.output_of(getattr(err, "filename2", None))
        if target is None and err.filename is None and err.errno in _WRITE_ERRNOS and self._entries:
            target = list(self._entries.values())[
                -1
            ].target  # e.g. ENOSPC from a flush: the output being written
        return None if target is None else write_error(err, target)

    # -- commit and clean-up -----------------------------------------------------------
    def _backup(self, e: _Entry) -> None:
        """Keep the previous output under a backup name until the set is in place."""
        if not os.path.lexists(e.target):
            return
        _check_kind(e.target, e.is_dir)
        backup = e.tmp.with_name(e.tmp.name[: -len(TMP_SUFFIX)] + OLD_SUFFIX)
        e.backup_fd = _lock(e.target)  # a folder's lock moves with it to the backup name
        if not e.is_dir and not e.target.is_dir():
            try:
                os.link(
                    e.target, backup, follow_symlinks=False
                )  # the target stays in place meanwhile
                e.backup = backup
                return
            except OSError:
                pass  # no hard links here: move it aside instead
        os.replace(e.target, backup)
        e.backup = backup

    def commit(self) -> None:
        """Move every temporary into place; on failure put every previous output back."""
        current: _Entry | None = None
        try:
            for e in self._entries.values():
                current = e
                self._backup(e)
                os.replace(e.tmp, e.target)
                e.committed = True
        except BaseException as err:
            self._rollback()
            if isinstance(err, OSError) and current is not None:
                raise write_error(err, current.target) from None
            raise
        for e in self._entries.values():
            if e.backup is not None:
                _remove(e.backup)
                e.backup = None

    def _rollback(self) -> None:
        """Put every previous output back and remove the new ones (after a failed commit)."""
        for e in reversed(list(self._entries.values())):
            try:
                if e.backup is None:
                    if e.committed:  # there was no previous output
                        _remove(e.target)
                    continue
                if not e.committed and os.path.lexists(
                    e.target
                ):  # hard-link backup: the target is still the old one
                    _remove(e.backup)
                else:
                    if e.committed and (e.target.is_dir() or e.backup.is_dir()):
                        _remove(e.target)
                    os.replace(e.backup, e.target)
                e.backup = None
            except (
                OSError
            ) as err:  # pragma: no cover - best effort; the next run restores the backup
                log.error(
                    "could not restore %s (%s); its previous content is in %s",
                    e.target,
                    err.strerror,
                    e.backup,
                )

    def close(self) -> None:
        """Release the locks and remove every temporary not moved into place."""
        for e in self._entries.values():
            _unlock(e.fd)
            _unlock(e.backup_fd)
            if not e.committed:
                _remove(e.tmp)
        self._entries.clear()

    def _discard(self, e: _Entry) -> None:
        _unlock(e.fd)
        _remove(e.tmp)


@contextmanager
def transaction() -> Iterator[OutputSet]:
    """Write a set of outputs all together or not at all.

    Register each output with :meth:`OutputSet.file` / :meth:`OutputSet.directory` (or
    call :func:`atomic_path`, :func:`atomic_dir`, :func:`write_csv`, :func:`write_json`
    inside the block: they join the open set) and write to the returned temporaries. When
    the block ends without error every temporary is renamed into place; when it raises,
    every temporary is removed and every previous output is untouched. A ``transaction()``
    opened inside another joins the outer one.

    Raises
    ------
    UserError
        An output cannot be written (permission, disk full, read-only file system); the
        line names the output.

    Examples
    --------
    >>> with transaction() as tx:                                      # doctest: +SKIP
    ...     joblib.dump(model, tx.file("models/model.joblib"))
    ...     write_json(metrics, "metrics/train.json")
    """
    outer = _ACTIVE.get()
    if outer is not None:
        yield outer
        return
    tx = OutputSet()
    token = _ACTIVE.set(tx)
    try:
        try:
            yield tx
        except OSError as err:
            mapped = tx.user_error(err)
            if mapped is None:
                raise
            raise mapped from None
        tx.commit()
    finally:
        _ACTIVE.reset(token)
        tx.close()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    If the body raises, the temporary file is removed and ``path`` is untouched. Inside an
    open :func:`transaction` the file is replaced when that transaction commits.
    """
    with transaction() as tx:
        yield tx.file(path)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``path``; on success it replaces ``path``.

    If the body raises, the temporary folder is removed and ``path`` is untouched. Inside
    an open :func:`transaction` the folder is replaced when that transaction commits.
    """
    with transaction() as tx:
        yield tx.directory(path)


#: significant digits of every float in a text output: BLAS kernels differ between CPUs (and
#: thread counts) in the last bits of a result, which 10 digits never show, so the same inputs
#: give the same bytes on every machine
SIGNIFICANT_DIGITS = 10
FLOAT_FORMAT = f"%.{SIGNIFICANT_DIGITS}g"  # for DataFrame.to_csv(float_format=...)


def round_floats(obj: Any) -> Any:
    """``obj`` with every float (numpy's too, inside dicts, lists, tuples, arrays) cut to
    :data:`SIGNIFICANT_DIGITS` significant digits; NaN and infinities are kept."""
    if isinstance(obj, dict):
        return {k: round_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [round_floats(v) for v in obj]
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy arrays and scalars
        return round_floats(obj.tolist())
    if isinstance(obj, float) and obj == obj and obj not in (float("inf"), float("-inf")):
        return float(f"{obj:.{SIGNIFICANT_DIGITS}g}")
    return obj


def write_csv(df: pd.DataFrame, path: str | Path, index: bool = False) -> None:
    """Write ``df`` as CSV atomically, floats with :data:`SIGNIFICANT_DIGITS` significant digits."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index, float_format=FLOAT_FORMAT)


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON atomically (numpy scalars converted, floats with
    :data:`SIGNIFICANT_DIGITS` significant digits)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(round_floats(obj), indent=2, default=_to_builtin) + "\n")


def _to_builtin(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__} to JSON")

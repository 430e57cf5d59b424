"""Entry-point helpers shared by every stage script: logging set-up and error handling."""

from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading
import time
from typing import Callable

from smp_balr.core.errors import UserError

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# errors of the file system that the user fixes (no traceback): permission, space, read-only
_FS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class _Terminated(BaseException):
    """SIGTERM turned into an exception, so that ``finally`` blocks remove temporaries."""


def stage_item(n: int, usage: str) -> list[str]:
    """The item a ``foreach``/``matrix`` stage runs for.

    The item is a label (``n`` = 1) or a label and a method (``n`` = 2).

    Under DVC the item comes from the stage's own name (DVC sets ``DVC_STAGE``, e.g.
    ``select@EmoClass-slda``), so no name from params.yaml or the labels CSV is ever part of
    a shell command; run by hand, it comes from the command line. Either way it is checked as
    a plain name.

    Examples
    --------
    >>> import os, sys
    >>> os.environ["DVC_STAGE"], sys.argv = "select@Emo-Class-slda", ["x"]
    >>> stage_item(2, "usage: ...")
    ['Emo-Class', 'slda']
    >>> del os.environ["DVC_STAGE"]
    """
    from smp_balr.core.settings import check_name

    args = sys.argv[1:]
    stage = os.environ.get("DVC_STAGE", "")
    if not args and "@" in stage:
        item = stage.split("@", 1)[1]
        args = item.rsplit("-", 1) if n == 2 else [item]
    if len(args) != n:
        raise UserError(usage)
    return [check_name(a, "argument", "rename the label in params.yaml") for a in args]


def setup_logging(level: int = logging.INFO) -> None:
    """Configure root logging once for a stage process."""
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", force=True)
    # third-party chatter that drowns the stage's own lines
    for noisy in ("matplotlib", "PIL", "pytensor", "numba", "shap", "pymc", "bambi", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


# set by Ctrl-C: libraries that catch KeyboardInterrupt and carry on with partial work (pymc's
# ADVI and NUTS loops, scikit-learn's MLP epochs) cannot make the stage end as a success
_INTERRUPTED = threading.Event()


def _raise_interrupt(signum: int, frame: object) -> None:
    _INTERRUPTED.set()
    raise KeyboardInterrupt()


def _dvc_process():
    """The ``dvc`` process this stage runs under (DVC sets ``DVC_STAGE``), or None."""
    if not os.environ.get("DVC_STAGE"):
        return None
    try:
        import psutil

        for parent in psutil.Process().parents():
            if any(os.path.basename(part) in ("dvc", "dvc.exe") for part in parent.cmdline()[:3]):
                return parent
    except Exception:  # noqa: BLE001 - no process information: nothing to watch
        return None
    return None


def watch_dvc(interval: float = 1.0) -> threading.Thread | None:
    """End this stage (as SIGTERM would) when the ``dvc`` process that started it dies.

    DVC does not pass SIGTERM on to the stage command it runs: ``kill <dvc pid>`` ends dvc
    and used to leave the stage running as an orphan that went on writing outputs. A daemon
    thread polls the dvc process every ``interval`` seconds and, once it is gone, sends
    SIGTERM to this process, whose handler ends the stage through its clean-up (exit 143,
    no output replaced).
    """
    dvc = _dvc_process()
    if dvc is None:
        return None

    import psutil

    def alive() -> bool:
        try:  # is_running compares the creation time too (a reused pid is not dvc); a dead dvc
            return (
                dvc.is_running() and dvc.status() != psutil.STATUS_ZOMBIE
            )  # not yet reaped is a zombie
        except psutil.Error:
            return False

    def watch() -> None:
        while alive():
            threading.Event().wait(interval)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="watch-dvc", daemon=True)
    thread.start()
    return thread


def _clean_leftovers() -> None:
    """Under DVC, remove the temporaries killed runs left beside any output of the project."""
    if os.environ.get("DVC_STAGE"):
        from smp_balr.core.outputs import clean_project_leftovers

        clean_project_leftovers()


def fs_error_line(err: OSError) -> str | None:
    """One line for a file-system error the user can fix, or None for any other error."""
    if err.errno not in _FS_ERRNOS:
        return None
    from smp_balr.core.outputs import write_error

    if err.filename is None:
        return (
            f"{err.strerror or 'file-system error'} while writing outputs; "
            "free space or fix the permissions and rerun"
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot access {err.filename}: permission denied; "
            "check the permissions of that file and its folder"
        )
    return str(write_error(err, err.filename))


def peak_memory() -> str:
    """Peak resident memory of this process and of its largest worker process, as text.

    joblib's loky workers outlive their tasks; they are stopped here so that their peak is
    counted (a worker's is the largest of the workers', not their sum).

    Examples
    --------
    >>> peak_memory().split()[1]  # e.g. "310 MB (its largest worker 264 MB)"
    'MB'
    """
    import resource

    if "joblib.externals.loky" in sys.modules:
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    per_mb = 1024 * 1024 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes / KiB
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / per_mb
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / per_mb
    text = f"{own:,.0f} MB"
    return text if workers == 0 else f"{text} (its largest worker {workers:,.0f} MB)"


def run(main: Callable[[], None], stage: str, atomic: bool = True) -> None:
    """Run a stage's ``main``; a :class:`UserError` becomes one line on stderr and exit 2.

    File-system errors the user can fix (permission denied, disk full, read-only file
    system) are reported the same way. SIGTERM and Ctrl-C end the stage through Python's
    clean-up (exit 143 / 130); so does the death of the ``dvc`` process that started the
    stage (:func:`watch_dvc`). BLAS runs on one thread (same bytes whatever the cores), and
    under DVC the temporaries of killed runs are removed first.

    Parameters
    ----------
    main : callable
        The stage body, taking no arguments.
    stage : str
        Stage name used in the error line.
    atomic : bool
        Run ``main`` inside one :func:`smp_balr.core.outputs.transaction`: every output it writes
        through :mod:`smp_balr.core.outputs` (``write_csv``, ``write_json``, ``atomic_path``,
        ``atomic_dir``) is replaced together when ``main`` returns, and none is replaced
        when it fails, is interrupted or terminated.
    """
    setup_logging()
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
        previous_int = signal.signal(signal.SIGINT, _raise_interrupt)
        watch_dvc()
    try:
        from threadpoolctl import threadpool_limits

        _clean_leftovers()
        # one BLAS thread: the results do not depend on the number of cores (BLAS splits sums
        # differently per thread count, changing the last bits of a result)
        start = time.perf_counter()
        with threadpool_limits(limits=1, user_api="blas"):
            _call(main, stage, atomic)
        logging.getLogger(stage).info(
            "done in %.1f s, peak memory %s", time.perf_counter() - start, peak_memory()
        )
    finally:
        if in_main:  # a handler installed outside Python reads as None: put the default back then
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
            signal.signal(
                signal.SIGINT, signal.default_int_handler if previous_int is None else previous_int
            )


def _call(main: Callable[[], None], stage: str, atomic: bool) -> None:
    from smp_balr.core.outputs import transaction

    _INTERRUPTED.clear()

    def body() -> None:
        main()
        if (
            _INTERRUPTED.is_set()
        ):  # swallowed by a library: still an interrupt, before any output is replaced
            raise KeyboardInterrupt()

    try:
        if atomic:
            with transaction():
                body()
        else:
            body()
    except UserError as err:
        _fail(stage, str(err), 2)
    except OSError as err:
        line = fs_error_line(err)
        if line is None:
            raise
        _fail(stage, line, 2)
    except KeyboardInterrupt:
        _fail(stage, "interrupted", 130)
    except _Terminated:
        _fail(stage, "terminated", 143)


def _fail(stage: str, message: str, code: int) -> None:
    msg = " ".join(message.split())
    print(f"error [{stage}]: {msg}", file=sys.stderr)
    sys.exit(code)

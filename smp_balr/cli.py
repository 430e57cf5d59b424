"""Entry-point helpers shared by every stage script: logging set-up and error handling."""

from __future__ import annotations

import errno
import logging
import signal
import sys
import threading
from typing import Callable

from smp_balr.errors import UserError

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# errors of the file system that the user fixes (no traceback): permission, space, read-only
_FS_ERRNOS = {errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class _Terminated(BaseException):
    """SIGTERM turned into an exception, so that ``finally`` blocks remove temporaries."""


def setup_logging(level: int = logging.INFO) -> None:
    """Configure root logging once for a stage process."""
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", force=True)
    # third-party chatter that drowns the stage's own lines
    for noisy in ("matplotlib", "PIL", "pytensor", "numba", "shap", "pymc", "bambi", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def fs_error_line(err: OSError) -> str | None:
    """One line for a file-system error the user can fix, or None for any other error."""
    if err.errno not in _FS_ERRNOS:
        return None
    from smp_balr.outputs import write_error

    if err.filename is None:
        return f"{err.strerror or 'file-system error'} while writing outputs; free space or fix the permissions and rerun"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"cannot access {err.filename}: permission denied; check the permissions of that file and its folder"
    return str(write_error(err, err.filename))


def run(main: Callable[[], None], stage: str, atomic: bool = True) -> None:
    """Run a stage's ``main``; a :class:`UserError` becomes one line on stderr and exit 2.

    File-system errors the user can fix (permission denied, disk full, read-only file
    system) are reported the same way. SIGTERM and Ctrl-C end the stage through Python's
    clean-up (exit 143 / 130).

    Parameters
    ----------
    main : callable
        The stage body, taking no arguments.
    stage : str
        Stage name used in the error line.
    atomic : bool
        Run ``main`` inside one :func:`smp_balr.outputs.transaction`: every output it writes
        through :mod:`smp_balr.outputs` (``write_csv``, ``write_json``, ``atomic_path``,
        ``atomic_dir``) is replaced together when ``main`` returns, and none is replaced
        when it fails, is interrupted or terminated.
    """
    setup_logging()
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        _call(main, stage, atomic)
    finally:
        if in_main:  # a handler installed outside Python reads as None: put the default back then
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _call(main: Callable[[], None], stage: str, atomic: bool) -> None:
    from smp_balr.outputs import transaction

    try:
        if atomic:
            with transaction():
                main()
        else:
            main()
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

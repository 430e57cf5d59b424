"""Entry-point helpers shared by every stage script: logging set-up and error handling."""

from __future__ import annotations

import logging
import sys
from typing import Callable

from smp_balr.errors import UserError

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: int = logging.INFO) -> None:
    """Configure root logging once for a stage process."""
    logging.basicConfig(level=level, format=LOG_FORMAT, datefmt="%H:%M:%S", force=True)
    # third-party chatter that drowns the stage's own lines
    for noisy in ("matplotlib", "PIL", "pytensor", "numba", "shap", "pymc", "bambi", "h5py"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(main: Callable[[], None], stage: str) -> None:
    """Run a stage's ``main``; a :class:`UserError` becomes one line on stderr and exit 2.

    Parameters
    ----------
    main : callable
        The stage body, taking no arguments.
    stage : str
        Stage name used in the error line.
    """
    setup_logging()
    try:
        main()
    except UserError as err:
        msg = " ".join(str(err).split())
        print(f"error [{stage}]: {msg}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error [{stage}]: interrupted", file=sys.stderr)
        sys.exit(130)

"""Where joblib runs parallel work: this machine's processes, or a Dask cluster.

The dt hyper-parameter search (scikit-learn's search objects) and row-chunked work such as
SHAP explanations (:func:`map_row_chunks`) go through joblib; :func:`parallel_backend`
chooses joblib's backend for everything run inside it::

    with parallel_backend("dask", "tcp://scheduler:8786"):
        tree, info = search_tree(X, y, groups, grid, n_jobs=-1)

``dask`` needs the optional packages ``dask`` and ``distributed``; the results are the
same as with the default backend (the work and its seeds do not depend on where it runs).
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import joblib
import numpy as np
from tqdm import tqdm

from smp_balr.core.errors import UserError
from smp_balr.core.options import PARALLEL_BACKENDS

log = logging.getLogger(__name__)

BACKENDS = PARALLEL_BACKENDS
# the start of loky's warning when it replaces a worker (see parallel_backend)
LOKY_WORKER_REPLACED = "A worker stopped while some jobs were given to the executor"


def dask_available() -> bool:
    """Whether ``dask.distributed`` can be imported."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def parallel_backend(
    name: str = "loky", address: str | None = None, n_jobs: int | None = None
) -> Iterator[None]:
    """Run the joblib work inside the ``with`` block on backend ``name``.

    Parameters
    ----------
    name : {"loky", "threading", "multiprocessing", "dask"}
        joblib backend; ``loky`` (processes on this machine) is joblib's default.
    address : str, optional
        ``dask``: the scheduler address (``tcp://host:8786``); without it, the Dask client
        already created in this process is used.
    n_jobs : int, optional
        Default number of workers for calls that do not set one (``-1``: all workers).

    Raises
    ------
    UserError
        Unknown backend, an address for a backend other than ``dask``, ``dask`` without the
        ``distributed`` package, or no scheduler to connect to.
    """
    if name not in BACKENDS:
        raise UserError(f"parallel backend '{name}' is unknown; use one of {', '.join(BACKENDS)}")
    if address is not None and name != "dask":
        raise UserError(
            f"a scheduler address is only used by the dask backend, not '{name}'; "
            "remove it or use dask"
        )
    params: dict[str, Any] = {}
    if name == "dask":
        if not dask_available():
            raise UserError(
                "the dask backend needs the optional packages dask and distributed; install them "
                "(pip install dask distributed) or use the loky backend"
            )
        if address is not None:
            params["scheduler_host"] = address
        else:
            from distributed import get_client

            try:
                get_client()
            except ValueError:
                raise UserError(
                    "the dask backend found no Dask client; give the scheduler address "
                    "(tcp://host:8786) or start a distributed.Client first"
                ) from None
    log.info("joblib backend %s%s", name, f" at {address}" if address else "")
    with warnings.catch_warnings(), joblib.parallel_config(backend=name, n_jobs=n_jobs, **params):
        # loky replaces a worker whose memory grew by 300 MB since its first task (SHAP after
        # a study's fits); no task is lost, and its warning blames a leak or a timeout
        warnings.filterwarnings("ignore", message=LOKY_WORKER_REPLACED, category=UserWarning)
        yield


def map_row_chunks(
    func: Callable[..., np.ndarray],
    X: np.ndarray,
    n_chunks: int,
    n_jobs: int | None = None,
    indexed: bool = False,
    progress: str | None = None,
) -> np.ndarray:
    """Apply ``func`` to consecutive row chunks of ``X`` through joblib; stack the results.

    The chunks depend only on ``len(X)`` and ``n_chunks`` (never on the backend or the
    number of workers), so a ``func`` that is deterministic per chunk gives the same
    result on every backend.

    Parameters
    ----------
    func : callable
        Takes a (rows, ...) array and returns an array whose first axis is the rows.
    X : numpy.ndarray
        Rows to process.
    n_chunks : int
        Number of chunks (at most ``len(X)``).
    n_jobs : int, optional
        Parallel workers; default the enclosing :func:`parallel_backend`'s, else 1.
    indexed : bool
        Call ``func(chunk, k)`` with the chunk's number ``k`` (from 0), e.g. to seed it.
    progress : str, optional
        Show a progress bar over the chunks with this description.

    Returns
    -------
    numpy.ndarray
        ``func`` of every chunk, concatenated along the first axis in row order.
    """
    if n_chunks < 1:
        raise UserError(f"n_chunks must be at least 1, got {n_chunks}")
    X = np.asarray(X)
    if len(X) == 0:
        return func(X, 0) if indexed else func(X)
    bounds = np.linspace(0, len(X), min(int(n_chunks), len(X)) + 1).astype(int)
    parts = joblib.Parallel(n_jobs=n_jobs, return_as="generator")(
        joblib.delayed(func)(X[a:b], *((k,) if indexed else ()))
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
    )
    parts = tqdm(
        parts,
        total=len(bounds) - 1,
        desc=progress,
        unit="chunk",
        disable=progress is None,
        leave=False,
    )
    return np.concatenate([np.asarray(p) for p in parts], axis=0)

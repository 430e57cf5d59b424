"""Memory budget checks: a corpus that cannot fit fails before the work, in one line."""

from __future__ import annotations

import psutil

from smp_balr.core.errors import UserError

GB = 1024**3


def available_bytes() -> int:
    """Memory the operating system can give this process now (bytes)."""
    return int(psutil.virtual_memory().available)


def require_memory(need: int, what: str, fix: str, available: int | None = None) -> None:
    """Raise a :class:`UserError` when ``need`` bytes exceed what is available.

    Parameters
    ----------
    need : int
        Estimated peak bytes of the step.
    what : str
        The step and its size, e.g. ``"format of 9,000,000 files x 512 BAs"``.
    fix : str
        The option that reduces the need.
    available : int, optional
        Bytes available (default: :func:`available_bytes`).
    """
    have = available_bytes() if available is None else int(available)
    if need > have:
        raise UserError(
            f"{what} needs about {need / GB:.1f} GB of memory but {have / GB:.1f} GB is available; "
            f"{fix}"
        )


def format_need(n_rows: int, n_ba: int, label_bytes: int) -> int:
    """Peak bytes of ``format``.

    The int8 matrix, its Train/Test copies and the labels (x2 for pandas).
    """
    return 2 * n_rows * n_ba + 2 * int(label_bytes)

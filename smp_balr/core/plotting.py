"""The one matplotlib set-up: a headless backend and byte-deterministic PNG files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smp_balr.core.outputs import atomic_path


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig: Any, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` atomically as a PNG, then close it.

    The PNG carries no timestamp or software tag.
    """
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, metadata={"Software": None})
    pyplot().close(fig)

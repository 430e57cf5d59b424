"""``make exp``: DVC experiments side by side by their presence metrics (metrics/presence.json)."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Mapping, Sequence

from smp_balr.core import paths
from smp_balr.core.errors import UserError

TIMEOUT = 300  # seconds `dvc exp show` may take before we give up with one line


def exp_show(timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """``dvc exp show --json`` of the project in the working directory."""
    try:
        proc = subprocess.run(
            ["dvc", "exp", "show", "--json"], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"`dvc exp show --json` did not answer within {timeout:.0f} s; run it by hand to see "
            "why"
        ) from None
    except FileNotFoundError:
        raise UserError(
            "dvc is not on PATH; run `make exp` (it uses the project's .venv)"
        ) from None
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(
            f"`dvc exp show --json` failed ({last[0][:200]}); run it in the project root"
        )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise UserError(
            "`dvc exp show --json` printed no JSON; use the DVC version of requirements.lock"
        ) from None


def rows(shown: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per experiment (and the workspace) and label: its verdict and figures."""
    out = []
    key = str(paths.PRESENCE_METRICS)
    for baseline in shown:
        entries = [baseline] + [
            e for exp in baseline.get("experiments") or [] for e in exp.get("revs") or []
        ]
        for entry in entries:
            data = entry.get("data") or {}
            rev = str(entry.get("rev", "?"))
            name = entry.get("name") or (rev if rev == "workspace" else rev[:7])
            metrics = ((data.get("metrics") or {}).get(key) or {}).get("data") or {}
            for label, item in metrics.items():
                if isinstance(item, dict) and "verdict" in item:
                    out.append({"experiment": name, "label": label, **item})
    return out


def format_table(items: Sequence[Mapping[str, Any]]) -> str:
    """The rows in 80 columns: experiment, label, chosen configuration, figures, verdict.

    The figures are the balanced accuracy, the low end of its interval and the corrected p.
    """

    def num(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    lines = [
        f"{'experiment':<14} {'label':<10} {'chosen':<20} "
        f"{'b.acc':>5} {'ci_lo':>5} {'p adj':>6} verdict"
    ]
    for r in items:
        chosen = (r.get("chosen") or "-").replace(" / balance ", "/").replace(" / ", "/")
        lines.append(
            f"{str(r['experiment'])[:14]:<14} {str(r['label'])[:10]:<10} {chosen[:20]:<20} "
            f"{num(r.get('balanced_accuracy'), '.3f'):>5} {num(r.get('ci_low'), '.3f'):>5} "
            f"{num(r.get('p_adjusted'), '.4f'):>6} {r.get('verdict', '-')}"
        )
    return "\n".join(lines)

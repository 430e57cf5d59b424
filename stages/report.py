"""Stage `report`: the presence table across labels, from the study stages' outputs.

Writes reports/presence.md, reports/presence.html (self-contained), reports/presence_files/ and
metrics/presence.json (per label: verdict, chosen configuration, figures; a DVC metric).
"""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import write_json
from smp_balr.core.settings import load_settings
from smp_balr.report.build import build_report

log = logging.getLogger("report")


def main() -> None:
    s = load_settings()
    metrics = build_report(s, paths.REPORTS)
    write_json(metrics, paths.PRESENCE_METRICS)
    log.info(
        "wrote %s, %s and %s: %d of %d labels present",
        paths.PRESENCE_MD,
        paths.PRESENCE_HTML,
        paths.PRESENCE_METRICS,
        metrics["n_present"],
        metrics["n_labels"],
    )


if __name__ == "__main__":
    run(main, "report")

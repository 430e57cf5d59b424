"""Stage `selection_report`: metrics/selection.json (count selected; precision/recall on the demo).

Per label: one entry per method of `selection.selectors` and one for `common` (stage
`common@<label>`).
"""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import write_json
from smp_balr.core.settings import load_settings
from smp_balr.data.demo import planted_truth
from smp_balr.selection.report import build_report

log = logging.getLogger("selection_report")


def main() -> None:
    s = load_settings()
    truth = planted_truth(s.data.labels, s.data.ba_dir)
    if truth is None:
        log.info(
            "no planted truth (the data are not the demo corpus, or %s is missing): counts only",
            paths.DEMO_TRUTH,
        )
    report = build_report(s.labels, s.selection.selectors, truth)
    write_json(report, paths.SELECTION_METRICS)
    for label, per in report.items():
        for method, entry in per.items():
            log.info("%s %s: %s", label, method, entry)


if __name__ == "__main__":
    run(main, "selection_report")

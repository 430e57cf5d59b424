"""``python -m smp_balr.report``: write reports/presence.md and reports/presence.html."""

from __future__ import annotations

import argparse
import sys

from smp_balr.cli import setup_logging
from smp_balr.errors import UserError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m smp_balr.report",
                                 description="Presence report from the sweep's DVC experiments.")
    ap.add_argument("--out", default="reports", help="output folder (default: reports)")
    args = ap.parse_args(argv)
    setup_logging()
    from smp_balr.report.build import build_report

    try:
        build_report(".", args.out)
    except UserError as err:
        print(f"error [report]: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

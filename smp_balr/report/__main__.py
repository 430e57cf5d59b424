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
    ap.add_argument("--table", action="store_true", help="only print the experiments as an 80-column table (make exp)")
    args = ap.parse_args(argv)
    setup_logging()
    from pathlib import Path

    from smp_balr.report import collect
    from smp_balr.report.build import build_report, exp_show

    try:
        if args.table:
            frame = collect.records(collect.parse_exp_show(exp_show(Path("."))))
            print(collect.format_table(frame) if len(frame) else "no experiments yet: `dvc exp run -S ...` or `make sweep`")
            return 0
        build_report(".", args.out)
    except UserError as err:
        print(f"error [report]: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

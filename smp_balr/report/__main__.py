"""``python -m smp_balr.report --table`` (``make exp``): experiments' presence tables side by side.

The report itself is the pipeline's stage ``report`` (``dvc repro``).
"""

from __future__ import annotations

import argparse
import sys

from smp_balr.core.cli import setup_logging
from smp_balr.core.errors import UserError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m smp_balr.report",
        description="The DVC experiments' presence metrics in 80 columns.",
    )
    ap.add_argument(
        "--table", action="store_true", help="print the experiments' presence tables (make exp)"
    )
    args = ap.parse_args(argv)
    setup_logging()
    from smp_balr.report.experiments import exp_show, format_table, rows

    if not args.table:
        print(
            "the presence report is the pipeline stage `report`: run `dvc repro` (or `make repro`)"
        )
        return 0
    try:
        items = rows(exp_show())
    except UserError as err:
        print(f"error [exp]: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    print(
        format_table(items)
        if items
        else "no presence metrics yet: run `dvc repro` or `dvc exp run -S ...`"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

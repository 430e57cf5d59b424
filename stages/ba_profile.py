"""Stage `profile`: the BA profile of the training corpus (BA-LR's typicality and dropout).

Usage: python -m stages.ba_profile
Writes metrics/bas/profile.csv (per BA: frequency, typicality, dropout, speakers having it,
dead and constant flags) and metrics/bas/profile.json (counts and quantiles).
"""

from __future__ import annotations

import logging

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import transaction, write_csv, write_json
from smp_balr.core.settings import load_settings
from smp_balr.data.tables import read_table
from smp_balr.selection.association import profile_table

log = logging.getLogger("profile")


def main() -> None:
    s = load_settings()
    profile, summary = profile_table(
        read_table(paths.train_table(s.data.name)), s.association.has_share
    )
    with transaction():
        write_csv(profile, paths.BA_PROFILE)
        write_json(summary, paths.BA_PROFILE_INFO)
    log.info(
        "profile: %d BAs, %d dead, %d always active; median typicality %s, median dropout %s",
        summary["n_ba"],
        summary["n_dead"],
        summary["n_always_active"],
        summary["typicality"]["q50"],
        summary["dropout"]["q50"],
    )


if __name__ == "__main__":
    run(main, "profile")

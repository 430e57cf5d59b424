"""Stage `demo`: generate the synthetic demo corpus, streamed.

The corpus: BA files, a labels CSV and the planted truth.
"""

from __future__ import annotations

import logging
import time

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.settings import load_settings
from smp_balr.data.demo import write_demo

log = logging.getLogger("demo")


def main() -> None:
    settings = load_settings().demo
    t0 = time.perf_counter()
    lab = write_demo(settings, paths.DEMO_BA_DIR, paths.DEMO_LABELS, paths.DEMO_TRUTH)
    log.info(
        "wrote %d utterances of %d speakers (%d Train / %d Test speakers), D = %d, in %.1f s",
        len(lab),
        lab["Speaker"].nunique(),
        lab.loc[lab["Group"] == "Train", "Speaker"].nunique(),
        lab.loc[lab["Group"] == "Test", "Speaker"].nunique(),
        settings.n_ba,
        time.perf_counter() - t0,
    )
    for label in ("Language", "Modality", "EmoClass", "Noise"):
        log.info("%s classes %s", label, lab[label].value_counts().to_dict())
    log.info(
        "labels %s, BA files under %s, truth %s",
        paths.DEMO_LABELS,
        paths.DEMO_BA_DIR,
        paths.DEMO_TRUTH,
    )


if __name__ == "__main__":
    run(main, "demo")

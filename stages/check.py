"""Stage `check`: validate params.yaml as a whole before any other stage touches an output.

Every stage depends on its output, so a wrong setting (a misspelt key, a value out of range,
a `label` that is not in `labels`, a `features.method` no selector produces) stops `dvc repro`
here, with one line, and every earlier result stays in place.
"""

from __future__ import annotations

import logging
import os

from smp_balr.core import paths
from smp_balr.core.cli import run
from smp_balr.core.outputs import clean_project_leftovers, write_json
from smp_balr.core.params import load_params
from smp_balr.core.settings import check_dvc_sources, load_settings

log = logging.getLogger("check")


def main() -> None:
    s = load_settings()
    clean_project_leftovers()  # what killed runs left, whatever the cache state of their stages
    if os.environ.get("DVC_STAGE"):
        check_dvc_sources(load_params())
    # constant content: downstream stages rerun for their own params, never because this
    # file changed
    write_json({"params": "valid"}, paths.SETTINGS_CHECK)
    log.info(
        "params.yaml is valid: label %s, features %s, model %s",
        s.label,
        s.features.method,
        s.model.method,
    )


if __name__ == "__main__":
    run(main, "check")

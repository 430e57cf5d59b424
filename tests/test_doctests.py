"""The Examples of the public entry points a researcher calls from a notebook run, and hold."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "smp_balr.model.estimator",
    "smp_balr.selection.api",
    "smp_balr.evaluation.scores",
    "smp_balr.study.grid",
    "smp_balr.core.cli",
    "smp_balr.evaluation.effects",
    "smp_balr.evaluation.verdict",
    "smp_balr.evaluation.conditional",
    "smp_balr.core.multitest",
    "smp_balr.selection.association",
]


@pytest.mark.parametrize("name", MODULES)
def test_examples(name: str) -> None:
    result = doctest.testmod(
        importlib.import_module(name), optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted > 0, f"{name} has no example"
    assert result.failed == 0

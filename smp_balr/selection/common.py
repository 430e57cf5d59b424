"""``common``: per label, the BAs in every feature file whose name matches include/exclude."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from smp_balr.core.errors import UserError

log = logging.getLogger(__name__)

SUFFIX = "_features.csv"
DEFAULT_EXCLUDE = ("_all_",)


def matching_files(
    folder: str | Path,
    include: Sequence[str],
    exclude: Sequence[str] = (),
    candidates: Iterable[str] | None = None,
) -> list[Path]:
    """Feature files in ``folder`` whose names contain every ``include`` and no ``exclude`` string.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``*_features.csv`` files.
    include, exclude : sequence of str
        Substrings of the file name.
    candidates : iterable of str, optional
        If given, only files with these names are considered (e.g. the outputs of the
        current select stages, so that stale files never count).
    """
    folder = Path(folder)
    files = sorted(folder.glob(f"*{SUFFIX}")) if folder.is_dir() else []
    if candidates is not None:
        allowed = set(candidates)
        files = [p for p in files if p.name in allowed]
    return [
        p
        for p in files
        if all(s in p.name for s in include) and not any(s in p.name for s in exclude)
    ]


def intersect(files: Sequence[str | Path]) -> pd.DataFrame:
    """BAs listed in every file, in the order of the first file.

    Returns
    -------
    pandas.DataFrame
        ``Feature`` plus ``N_Files`` (the number of files intersected).
    """
    sets = []
    first: list[str] = []
    for i, path in enumerate(files):
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "Feature" not in df.columns:
            raise UserError(
                f"feature file {path} has no 'Feature' column; rerun `dvc repro select`"
            )
        feats = [f for f in df["Feature"] if f]
        if i == 0:
            first = feats
        sets.append(set(feats))
    common = set.intersection(*sets) if sets else set()
    return pd.DataFrame({"Feature": [f for f in first if f in common], "N_Files": len(sets)})


def label_common(
    folder: str | Path,
    label: str,
    selectors: Sequence[str],
    include: Sequence[str] = (),
    exclude: Sequence[str] = DEFAULT_EXCLUDE,
) -> tuple[pd.DataFrame, list[Path]]:
    """Intersection of ``label``'s feature files (one per method of ``selectors``) chosen by name.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``<label>_<method>_features.csv``.
    label : str
        The label; its prefix ``<label>_`` is always required.
    selectors : sequence of str
        The current ``selection.selectors``: only their files are candidates (stale files never
        count).
    include, exclude : sequence of str
        ``selection.common.include`` / ``exclude`` substrings of the file name.

    Returns
    -------
    (pandas.DataFrame, list of Path)
        ``Feature, N_Files`` (empty with a warning when no BA is in every file) and the files used.

    Raises
    ------
    UserError
        One line when no candidate file matches include/exclude.
    """
    prefix = f"{label}_"
    candidates = {f"{prefix}{m}{SUFFIX}" for m in selectors}
    files = [
        p for p in matching_files(folder, include, exclude, candidates) if p.name.startswith(prefix)
    ]
    if not files:
        raise UserError(
            f"selection.common for label '{label}': include/exclude matching no file — no feature "
            f"file of selectors {list(selectors)} in {folder}/ starts with '{prefix}', contains "
            f"{list(include)} and none of {list(exclude)}; fix selection.common (include/exclude) "
            "or selection.selectors in params.yaml"
        )
    table = intersect(files)
    names = ", ".join(p.name for p in files)
    if table.empty:
        log.warning("common %s: no BA is in all of %s; writing an empty list", label, names)
    else:
        log.info("common %s: %d BAs in all of %s", label, len(table), names)
    return table, files

"""``common``: BAs present in every feature file whose name matches include/exclude strings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from smp_balr.errors import UserError

log = logging.getLogger(__name__)

SUFFIX = "_features.csv"


def matching_files(
    folder: str | Path, include: Sequence[str], exclude: Sequence[str] = (), candidates: Iterable[str] | None = None
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
    return [p for p in files if all(s in p.name for s in include) and not any(s in p.name for s in exclude)]


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
            raise UserError(f"feature file {path} has no 'Feature' column; rerun `dvc repro select`")
        feats = [f for f in df["Feature"] if f]
        if i == 0:
            first = feats
        sets.append(set(feats))
    common = set.intersection(*sets) if sets else set()
    return pd.DataFrame({"Feature": [f for f in first if f in common], "N_Files": len(sets)})


def common_features(
    folder: str | Path,
    output: str,
    include: Sequence[str],
    exclude: Sequence[str] = (),
    candidates: Iterable[str] | None = None,
) -> tuple[pd.DataFrame, list[Path]]:
    """Intersection for one ``selection.common`` entry; one clear error line when no file matches."""
    files = matching_files(folder, include, exclude, candidates)
    if not files:
        raise UserError(
            f"selection.common '{output}': no feature file in {folder}/ contains {list(include)} and none of "
            f"{list(exclude)}; fix include/exclude in params.yaml or run the select stages first"
        )
    table = intersect(files)
    if table.empty:
        log.warning("common %s: no BA is in all of %s; writing an empty list", output, ", ".join(p.name for p in files))
    log.info("common %s: %d BAs in all of %s", output, len(table), ", ".join(p.name for p in files))
    return table, files

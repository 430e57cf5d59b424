"""Which sweep configurations already have an up-to-date experiment, so that a repeated sweep skips them.

An experiment of the current commit can stand for a grid configuration when DVC would
reproduce nothing in it: for every stage it ran (the ``check`` stage aside, whose output
never changes), the parameters it recorded equal the values the sweep would set now, and
every input that no stage produces (code, the labels CSV, the BA folder) has the hash it
recorded. Inputs that a stage produces follow from those, as with DVC's run cache. The
experiment's ``dvc.yaml`` must also be the workspace's, byte for byte.

Everything is read with git from the experiment refs (``refs/exps/<baseline>/<name>``): one
``git cat-file --batch`` process for all of them, no DVC start-up per experiment.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

import yaml

log = logging.getLogger(__name__)
# libyaml's parser when PyYAML was built with it: a lock file parses 8x faster
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

LOCK = "dvc.lock"
PIPELINE = "dvc.yaml"
PARAMS = "params.yaml"
ALWAYS_RERUN = ("check",)  # stages whose rerun changes nothing downstream (constant output)
_MISSING = object()


@dataclass(frozen=True)
class StoredExperiment:
    """An experiment ref of the current commit, as git holds it.

    Attributes
    ----------
    name : str
        Experiment name (the ref's last part).
    commit : str
        The experiment's commit.
    lock : dict
        Its ``dvc.lock``.
    pipeline_blob : str
        Git object id of its ``dvc.yaml``.
    """

    name: str
    commit: str
    lock: dict[str, Any]
    pipeline_blob: str


def _git(args: list[str], cwd: Path, stdin: str | None = None) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, input=stdin, capture_output=True, text=True)
    return proc.stdout if proc.returncode == 0 else ""


def _batch(objects: list[str], cwd: Path) -> list[bytes | None]:
    """Contents of ``objects`` (``<commit>:<path>``) from one ``git cat-file --batch``; None when missing."""
    if not objects:
        return []
    proc = subprocess.run(["git", "cat-file", "--batch"], cwd=cwd, input="\n".join(objects).encode() + b"\n",
                          capture_output=True)
    data, pos, out = proc.stdout, 0, []
    for _ in objects:
        end = data.index(b"\n", pos)
        header = data[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[-1] == b"missing":
            out.append(None)
            continue
        size = int(header[2])
        out.append(data[pos:pos + size])
        pos += size + 1
    return out


def stored_experiments(project: Path) -> list[StoredExperiment]:
    """The experiments DVC keeps for the commit checked out in ``project`` (none outside a git repository)."""
    head = _git(["rev-parse", "HEAD"], project).strip()
    if not head:
        return []
    refs = _git(["for-each-ref", "--format=%(objectname) %(refname)", f"refs/exps/{head[:2]}/{head[2:]}/"], project)
    pairs = [line.split(" ", 1) for line in refs.splitlines() if " " in line]
    blobs = _git(["rev-parse", *[f"{c}:{PIPELINE}" for c, _ in pairs]], project).split() if pairs else []
    locks = _batch([f"{c}:{LOCK}" for c, _ in pairs], project)
    out = []
    for (commit, ref), lock, blob in zip(pairs, locks, blobs + [""] * (len(pairs) - len(blobs))):
        try:
            parsed = yaml.load(lock, Loader=_YAML_LOADER) if lock else None  # noqa: S506 - a safe loader
        except yaml.YAMLError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("stages"), dict):
            out.append(StoredExperiment(ref.rsplit("/", 1)[-1], commit, parsed, blob))
    return out


def expected_params(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with the dotted ``overrides`` of one sweep configuration applied (``-S key=value``)."""
    out = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _dotted(params: Mapping[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _entries(lock: Mapping[str, Any], stages: Collection[str] | None) -> list[tuple[str, dict]]:
    return [(name, entry) for name, entry in lock["stages"].items()
            if name not in ALWAYS_RERUN and (stages is None or name in stages)]


def source_reason(lock: Mapping[str, Any], current_hash: Callable[[str], str | None],
                  stages: Collection[str] | None = None) -> str | None:
    """The first input that no stage produces whose hash changed since the experiment ran (None: none).

    Inputs that a stage of the lock produces (or that lie inside a produced folder) are skipped:
    they follow from the sources and the parameters.
    """
    produced = {str(o["path"]).rstrip("/") for e in lock["stages"].values() for o in (e.get("outs") or [])
                if o.get("path")}
    for stage, entry in _entries(lock, stages):
        for dep in entry.get("deps") or []:
            path = str(dep.get("path"))
            if path in produced or any(str(parent) in produced for parent in Path(path).parents):
                continue
            if current_hash(path) != dep.get("md5"):
                return f"{stage}: {path} changed"
    return None


def param_reason(lock: Mapping[str, Any], params: Mapping[str, Any], stages: Collection[str] | None = None) -> str | None:
    """The first parameter a stage of the experiment ran with that differs from ``params`` (None: none)."""
    for stage, entry in _entries(lock, stages):
        for key, value in ((entry.get("params") or {}).get(PARAMS) or {}).items():
            if _dotted(params, str(key)) != value:
                return f"{stage}: parameter {key} changed"
    return None


def stale_reason(lock: Mapping[str, Any], params: Mapping[str, Any],
                 current_hash: Callable[[str], str | None], stages: Collection[str] | None = None) -> str | None:
    """Why DVC would rerun a stage of this experiment now (None: it would rerun nothing).

    Parameters
    ----------
    lock : dict
        The experiment's ``dvc.lock``.
    params : dict
        The parameters the sweep would give this configuration now.
    current_hash : callable
        Path -> its DVC md5 now (None when unknown: the experiment is then not reused).
    stages : collection of str, optional
        The pipeline's stages (``dvc stage list``): a lock may keep entries of stages that
        no longer exist, which DVC ignores and so does this. None: every entry counts.
    """
    return param_reason(lock, params, stages) or source_reason(lock, current_hash, stages)


class WorkspaceHashes:
    """DVC's md5 of the workspace's files, and of folders from the workspace's up-to-date ``dvc.lock``.

    A file's md5 is that of its bytes (DVC 3). A folder's (``<md5>.dir``) is taken from the
    workspace lock, which ``dvc repro`` of the shared stages has just brought up to date;
    a folder it does not list is unknown.
    """

    def __init__(self, project: Path):
        self.project = project
        self._cache: dict[str, str | None] = {}
        self._folders: dict[str, str] = {}
        lock_file = project / LOCK
        lock = yaml.load(lock_file.read_text(), Loader=_YAML_LOADER) if lock_file.is_file() else None  # noqa: S506
        for entry in ((lock or {}).get("stages") or {}).values():
            for dep in entry.get("deps") or []:
                if str(dep.get("md5", "")).endswith(".dir"):
                    self._folders[str(dep["path"])] = str(dep["md5"])

    def __call__(self, path: str) -> str | None:
        if path not in self._cache:
            target = self.project / path
            if target.is_file():
                digest = hashlib.md5()
                with open(target, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        digest.update(block)
                self._cache[path] = digest.hexdigest()
            else:
                self._cache[path] = self._folders.get(path)
        return self._cache[path]


def plan(configurations: list[dict[str, Any]], params: Mapping[str, Any], project: Path,
         experiments: list[StoredExperiment] | None = None,
         stages: Collection[str] | None = None) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Split the sweep's configurations into those to queue and those an experiment already answers.

    Parameters
    ----------
    configurations : list of dict
        Swept parameter -> value, one dict per experiment of the grid.
    params : dict
        The workspace's params.yaml.
    project : Path
        Project root (git + DVC).
    experiments : list of StoredExperiment, optional
        The stored experiments (read from git when None).
    stages : collection of str, optional
        The pipeline's stage names (see :func:`stale_reason`).

    Returns
    -------
    (list of dict, dict)
        The configurations to queue, and index of a reused configuration -> the experiment name.
    """
    experiments = stored_experiments(project) if experiments is None else experiments
    if not experiments:
        return list(configurations), {}
    pipeline_blob = _git(["hash-object", PIPELINE], project).strip()
    hashes = WorkspaceHashes(project)
    # the sources do not depend on the configuration: checked once per experiment
    candidates = [e for e in experiments
                  if e.pipeline_blob == pipeline_blob and source_reason(e.lock, hashes, stages) is None]
    todo, reused = [], {}
    for i, config in enumerate(configurations):
        wanted = expected_params(params, config)
        match = next((e for e in candidates if param_reason(e.lock, wanted, stages) is None), None)
        if match is None:
            todo.append(config)
        else:
            reused[i] = match.name
    return todo, reused

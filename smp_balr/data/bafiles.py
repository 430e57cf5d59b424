"""Reading BALR binary-attribute (BA) files and matching them to the labels' FileName column.

balr writes one vector per audio file as ``<stem>_ba.txt`` (numpy text), ``<stem>_ba.pkl``
(a pickled numpy array) or ``<stem>_ba.npy``. A vector has shape ``(D,)`` (1 = attribute
present) or ``(D, 2)`` (column 0 the attribute, column 1 its complement). Values may be
stored as floats ``0.0``/``1.0``.
"""

from __future__ import annotations

import functools
import logging
import os
import pickle
import re
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from smp_balr.core.errors import UserError

log = logging.getLogger(__name__)

BA_SUFFIX = "_ba"
BA_EXTENSIONS = (".txt", ".pkl", ".npy")
_BA_NAME_RE = re.compile(r"^(?P<stem>.+)_ba\.(?P<ext>txt|pkl|npy)$", re.IGNORECASE)  # x_ba.TXT too
#: largest BA file read: a (D, 2) text vector in numpy's default '%.18e' format takes 50 bytes
#: per attribute, so 1 MiB holds D = 20,000 (balr writes D = 256..1024); larger is not a BA file
MAX_BA_BYTES = 1024**2
_EXCERPT = 40  # bytes of a file's content quoted in an error line, at most


def _excerpt(token: bytes) -> str:
    """A short, printable excerpt of file content for an error line (never the whole file)."""
    text = token[:_EXCERPT].decode(errors="replace")
    return repr(text) + ("...(cut)" if len(token) > _EXCERPT else "")


def check_ba_path(path: Path) -> None:
    """Refuse, before reading, anything that is not a regular file of at most :data:`MAX_BA_BYTES`.

    A FIFO would block the read forever, a device (or a link to ``/dev/zero``) never ends, and
    a huge file would be read whole into memory: each is one line naming the file.
    """
    try:
        st = os.stat(path)  # follows symlinks: a link is judged by what it points to
    except OSError as err:
        raise UserError(
            f"BA file {path} cannot be read ({err.strerror}); check that it exists and its "
            "permissions"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a folder"
            if stat.S_ISDIR(st.st_mode)
            else "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode)
            else "a device"
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "not a regular file"
        )
        link = (
            f" (through a symbolic link to {os.path.realpath(path)})"
            if os.path.islink(path)
            else ""
        )
        raise UserError(
            f"BA file {path} is {kind}{link}, not a regular file; replace it by balr's output or "
            "remove it"
        )
    if st.st_size > MAX_BA_BYTES:
        raise UserError(
            f"BA file {path} has {st.st_size:,} bytes, more than a BA vector can take "
            f"({MAX_BA_BYTES:,}); it is not a balr BA file — re-extract it or remove it"
        )


# ---------------------------------------------------------------------------------------
# reading one file
# ---------------------------------------------------------------------------------------
def _parse_text(path: Path) -> tuple[np.ndarray, bool]:
    """Parse a numpy text file (whitespace or comma separated) into a float array.

    Returns the array and whether it spans several lines (one attribute per line).
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserError(
            f"BA file {path} cannot be read ({err.strerror}); check its permissions"
        ) from None
    if b"#" in raw or b"," in raw:  # comments or comma delimiter: normalise first (rare)
        raw = b"\n".join(ln.split(b"#", 1)[0] for ln in raw.splitlines()).replace(b",", b" ")
    body = raw.strip()
    if not body:
        raise UserError(f"BA file {path} is empty; re-extract it with balr or remove it")
    tokens = body.split()
    first_nl = body.find(b"\n")
    ncols = len(body[:first_nl].split()) if first_nl >= 0 else len(tokens)
    nrows = body.count(b"\n") + 1
    if nrows * ncols != len(tokens) or b"\n\n" in body.replace(b"\r", b""):
        rows = [ln.split() for ln in body.splitlines() if ln.strip()]
        bad = next((i for i, r in enumerate(rows) if len(r) != ncols), None)
        if bad is not None:
            raise UserError(
                f"BA file {path} is truncated or ragged (line {bad + 1} has {len(rows[bad])} "
                f"values, line 1 has {ncols}); re-extract it with balr or remove it"
            )
        nrows = len(rows)
    digits = body.translate(None, b" \t\r\n")
    flat: np.ndarray | None = None
    if len(digits) == len(tokens):  # every value one character: the common "0"/"1" files
        codes = np.frombuffer(digits, dtype=np.uint8) - np.uint8(48)
        if codes.max() <= 9:
            flat = codes.astype(np.float64)
    if flat is None:
        try:
            flat = np.array(tokens).astype(np.float64)
        except ValueError:
            bad_tok = next(t for t in tokens if not _is_float(t))
            raise UserError(
                f"BA file {path} holds a non-numeric value {_excerpt(bad_tok)}; "
                "it is not a balr BA text file — re-extract it or remove it"
            ) from None
    if nrows == 1 or ncols == 1:
        return flat, nrows > 1
    return flat.reshape(nrows, ncols), True


def _is_float(token: bytes) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


class _Refused(pickle.UnpicklingError):
    """A pickle asked for a callable outside the allow-list of :func:`_pickle_allowed`."""


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it for bytes (latin-1 only)."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _Refused("_codecs.encode with other than a latin-1 text")
    return text.encode("latin1")


def _empty_bytes(*args: object) -> bytes:
    """``bytes()`` as protocol-2 pickles use it for an empty buffer (no argument only)."""
    if args:
        raise _Refused("builtins.bytes with arguments")
    return b""


@functools.lru_cache(maxsize=1)
def _pickle_allowed() -> dict[tuple[str, str], object]:
    """The globals a pickled numpy array (numpy 1.x or 2.x, protocols 2 to 5) refers to.

    numpy 1.x writes ``numpy.core.*``, numpy 2.x ``numpy._core.*``; both names map to the
    objects of the installed numpy, looked up without importing numpy's deprecated shims.
    """
    try:
        from numpy._core import multiarray, numeric
    except ImportError:  # numpy 1.x before the numpy._core alias
        from numpy.core import multiarray, numeric  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_bytes,
        ("builtins", "bytes"): _empty_bytes,
        ("__builtin__", "bytes"): _empty_bytes,
    }
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer
    return allowed


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that can rebuild numpy arrays, numbers and lists, and nothing else.

    Every global a pickle names goes through :meth:`find_class`; anything outside the
    allow-list is refused before it is called, so a crafted file's payload never runs.
    """

    def __init__(self, fh, allowed: dict[tuple[str, str], object]) -> None:
        super().__init__(fh)
        self._allowed = allowed

    def find_class(self, module: str, name: str) -> object:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None

    def persistent_load(self, pid: object) -> object:
        raise _Refused("a persistent id")


def _load_pickle(path: Path) -> np.ndarray:
    """Load a ``.pkl`` BA file with :class:`_ArrayUnpickler` (numpy arrays and numbers only)."""
    try:
        with path.open("rb") as fh:
            obj = _ArrayUnpickler(fh, _pickle_allowed()).load()
    except OSError as err:
        raise UserError(
            f"BA file {path} cannot be read ({err.strerror}); check its permissions"
        ) from None
    except _Refused as err:
        raise UserError(
            f"BA file {path} refused: its pickle would call {err} (nothing was run); a BA .pkl "
            "may hold only a numpy array or a list of 0/1 numbers; re-extract it with balr, or "
            "convert it to <stem>_ba.npy if you trust its source"
        ) from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a broken file
        raise UserError(
            f"BA file {path} is unreadable or truncated ({type(err).__name__}); re-extract it "
            "with balr or remove it"
        ) from None
    return _as_numeric(obj, path)


def _load_npy(path: Path) -> np.ndarray:
    try:
        obj = np.load(path, allow_pickle=False)
    except OSError as err:
        raise UserError(f"BA file {path} cannot be read ({err}); check its permissions") from None
    except Exception as err:  # noqa: BLE001 - bad header, truncated data
        raise UserError(
            f"BA file {path} is unreadable or truncated ({type(err).__name__}); re-extract it "
            "with balr or remove it"
        ) from None
    return _as_numeric(obj, path)


def _as_numeric(obj: object, path: Path) -> np.ndarray:
    """``obj`` as a float64 array when it holds real numbers (bool, integer or float) only.

    Complex values (whose imaginary part a cast would drop), texts such as ``"0"``/``"1"``
    and object arrays are refused: a balr vector is real 0/1 numbers.
    """
    try:
        raw = np.asarray(obj)
    except (TypeError, ValueError):  # ragged nested lists
        raw = None
    if raw is None or raw.dtype.kind not in "biuf":
        found = type(obj).__name__ if raw is None else f"{type(obj).__name__} of dtype {raw.dtype}"
        raise UserError(
            f"BA file {path} does not hold real 0/1 numbers (found {found}); "
            "it is not a balr BA file — re-extract it or remove it"
        )
    return raw.astype(np.float64)


def _place(i: int, by_line: bool) -> str:
    """Where value ``i`` (0-based) sits, counted from 1 as editors count lines."""
    return f"line {i + 1} (BA{i})" if by_line else f"value {i + 1} (BA{i})"


def _to_vector(arr: np.ndarray, path: Path, by_line: bool = False) -> np.ndarray:
    """Check shape, complement and values; return the attribute vector as float64 (D,).

    ``by_line``: the file is text with one attribute per line, so places are named as lines.
    """
    if arr.ndim == 2 and 1 in arr.shape and arr.shape != (1, 2) and arr.shape != (2, 1):
        arr = arr.reshape(-1)
    if arr.ndim == 2 and arr.shape[1] == 2:
        vec, comp = arr[:, 0], arr[:, 1]
        if np.isnan(arr).any():
            raise UserError(
                f"BA file {path} contains NaN values; re-extract it with balr or remove it"
            )
        if not np.array_equal(comp, 1.0 - vec):
            row = int(np.flatnonzero(comp != 1.0 - vec)[0])
            raise UserError(
                f"BA file {path}: column 1 is not the complement of column 0 "
                f"({_place(row, by_line)}: {vec[row]:g}, {comp[row]:g}); "
                "a (D, 2) BA file must hold the attribute and 1 - attribute"
            )
    elif arr.ndim == 1:
        vec = arr
    else:
        raise UserError(
            f"BA file {path} has shape {arr.shape}; expected (D,) or (D, 2) — re-extract it with "
            "balr or remove it"
        )
    if vec.size == 0:
        raise UserError(f"BA file {path} is empty; re-extract it with balr or remove it")
    if np.isnan(vec).any():
        raise UserError(f"BA file {path} contains NaN values; re-extract it with balr or remove it")
    ok = (vec == 0.0) | (vec == 1.0)
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise UserError(
            f"BA file {path} holds {vec[i]:g} at {_place(i, by_line)}; BA values must be 0 or 1 — "
            "binarise the vectors (balr writes 0/1) or remove the file"
        )
    return vec


def read_ba_file(path: str | Path, invert: bool = False) -> np.ndarray:
    """Read one BA file into a 0/1 vector.

    Parameters
    ----------
    path : str or Path
        ``<stem>_ba.txt``, ``<stem>_ba.pkl`` or ``<stem>_ba.npy``.
    invert : bool
        Flip 0 and 1 (for old files where 0 means the attribute is present).

    Returns
    -------
    numpy.ndarray
        ``int8`` vector of shape ``(D,)`` with values 0/1 (1 = present).

    Raises
    ------
    UserError
        Not a regular file (FIFO, device, folder, a link to one), larger than
        :data:`MAX_BA_BYTES`, unreadable or truncated, not real numbers (complex, texts,
        objects), wrong shape, a (D, 2) file whose column 1 is not the complement, NaN,
        or values other than 0/1.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext in BA_EXTENSIONS:
        check_ba_path(path)
    if ext == ".txt":
        arr, by_line = _parse_text(path)
    elif ext == ".pkl":
        arr, by_line = _load_pickle(path), False
    elif ext == ".npy":
        arr, by_line = _load_npy(path), False
    else:
        raise UserError(
            f"{path} is not a BA file; expected <stem>_ba.txt, <stem>_ba.pkl or <stem>_ba.npy"
        )
    vec = _to_vector(arr, path, by_line).astype(np.int8)
    if invert:
        vec = 1 - vec
    return vec


def read_ba_files(paths: Sequence[Path], invert: bool = False, progress: bool = True) -> np.ndarray:
    """Read many BA files into one ``int8`` matrix of shape (files, D).

    Raises
    ------
    UserError
        Any per-file error of :func:`read_ba_file`, or vectors of different dimensions
        (naming one file of each dimension).
    """
    if not paths:
        return np.zeros((0, 0), dtype=np.int8)
    it: Iterable[Path] = paths
    if progress and len(paths) >= 2000:
        from tqdm import tqdm

        it = tqdm(paths, desc="reading BA files", unit="file", mininterval=1.0)
    first = read_ba_file(paths[0], invert)
    dim = first.size
    out = np.empty((len(paths), dim), dtype=np.int8)
    out[0] = first
    for i, p in enumerate(it):
        if i == 0:
            continue
        vec = read_ba_file(p, invert)
        if vec.size != dim:
            raise UserError(
                f"BA vectors have different dimensions: {paths[0]} has {dim}, {p} has {vec.size}; "
                "all files must come from the same balr model — re-extract or remove the odd ones"
            )
        out[i] = vec
    return out


# ---------------------------------------------------------------------------------------
# finding files and matching them to FileName
# ---------------------------------------------------------------------------------------
@dataclass
class BAIndex:
    """BA files found under a folder, keyed by stem (the audio file name without extension)."""

    root: Path
    by_stem: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def n_files(self) -> int:
        return sum(len(v) for v in self.by_stem.values())


def find_ba_files(ba_dir: str | Path) -> BAIndex:
    """Find ``*_ba.txt``, ``*_ba.pkl`` and ``*_ba.npy`` recursively under ``ba_dir``.

    Raises
    ------
    UserError
        When ``ba_dir`` does not exist or holds no BA file.
    """
    root = Path(ba_dir)
    if not root.is_dir():
        raise UserError(
            f"BA folder {root} (data.ba_dir) does not exist; set data.ba_dir to the folder of "
            "balr's output"
        )
    by_stem: dict[str, list[Path]] = defaultdict(list)
    for path in _walk(root):
        m = _BA_NAME_RE.match(path.name)
        if m:
            by_stem[m.group("stem")].append(path)
    if not by_stem:
        raise UserError(
            f"no BA file (<stem>_ba.txt, _ba.pkl or _ba.npy) found under {root} (data.ba_dir); "
            "point data.ba_dir at balr's output folder"
        )
    for paths in by_stem.values():
        paths.sort()
    return BAIndex(root=root, by_stem=dict(by_stem))


def _walk(root: Path) -> Iterable[Path]:
    """All files under ``root`` (os.walk-based: much faster than rglob on large trees)."""
    import os

    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        base = Path(dirpath)
        for name in filenames:
            if name.lower().endswith(("_ba.txt", "_ba.pkl", "_ba.npy")):
                yield base / name


def _name_parts(file_name: str) -> tuple[list[str], str, str]:
    """Folder parts, base name and stem (base name without its extension) of a FileName."""
    name = file_name.replace("\\", "/")
    if name.startswith("/"):  # rooted ("/", "//"): pathlib's rules
        p = PurePosixPath(name)
        folders = [part for part in p.parent.parts if part not in ("/", ".", "")]
        return folders, p.name, p.stem if p.suffix else p.name
    parts = [
        part for part in name.split("/") if part and part != "."
    ]  # as PurePosixPath splits, 10x faster
    base = parts[-1] if parts else ""
    dot = base.rfind(".")
    return parts[:-1], base, base[:dot] if 0 < dot < len(base) - 1 else base


def _common_suffix(a: Sequence[str], b: Sequence[str]) -> int:
    n = 0
    while n < len(a) and n < len(b) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


@dataclass
class MatchResult:
    """Outcome of matching label rows to BA files."""

    files: list[Path | None]  # per label row, its BA file or None
    unmatched_labels: list[str]  # FileNames without a vector
    unused_files: list[Path]  # BA files no label row points to

    @property
    def n_matched(self) -> int:
        return sum(f is not None for f in self.files)


def match_files(file_names: Sequence[str], index: BAIndex) -> MatchResult:
    """Match each ``FileName`` to its BA file.

    ``spk1/utt3.wav`` (any extension, with or without folders) matches ``utt3_ba.txt``,
    ``utt3_ba.pkl`` or ``utt3_ba.npy`` anywhere under the BA folder. When several BA files
    share the stem, the one whose folder path agrees best with the FileName's folders
    (longest common trailing folders) is taken; a tie is an error naming two of them.

    Raises
    ------
    UserError
        An ambiguous stem, or two label rows resolving to the same BA file.
    """
    files: list[Path | None] = []
    unmatched: list[str] = []
    used: dict[Path, str] = {}
    for name in file_names:
        folders, base, stem = _name_parts(name)
        cands = index.by_stem.get(stem) or index.by_stem.get(base)
        if not cands:
            files.append(None)
            unmatched.append(name)
            continue
        if len(cands) == 1:
            chosen = cands[0]
        else:
            scores = [
                _common_suffix(folders, c.parent.relative_to(index.root).parts) for c in cands
            ]
            best = max(scores)
            winners = [c for c, s in zip(cands, scores) if s == best]
            if len(winners) > 1:
                raise UserError(
                    f"FileName '{name}' matches several BA files, e.g. {winners[0]} and "
                    f"{winners[1]}; give FileName the folder that tells them apart, or remove the "
                    "duplicate"
                )
            chosen = winners[0]
        if chosen in used:
            raise UserError(
                f"FileNames '{used[chosen]}' and '{name}' both match BA file {chosen}; "
                "make FileName folders agree with the BA folders or remove one row"
            )
        used[chosen] = name
        files.append(chosen)
    unused = sorted(p for paths in index.by_stem.values() for p in paths if p not in used)
    return MatchResult(files=files, unmatched_labels=unmatched, unused_files=unused)

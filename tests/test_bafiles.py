"""Reading BA files of every variant, their errors, and FileName matching."""

from __future__ import annotations

import pickle
import pickletools
import warnings
from pathlib import Path

import numpy as np
import pytest

from smp_balr.core.errors import UserError
from smp_balr.data.bafiles import find_ba_files, match_files, read_ba_file, read_ba_files

VEC = np.array([1, 0, 0, 1, 1, 0, 1, 0], dtype=np.int8)


def _pkl(path: Path, obj: object) -> Path:
    path.write_bytes(pickle.dumps(obj))
    return path


@pytest.mark.parametrize(
    "writer",
    [
        lambda p: (np.savetxt(p / "a_ba.txt", VEC), p / "a_ba.txt")[1],  # %.18e floats, (D,)
        lambda p: (np.savetxt(p / "a_ba.txt", VEC, fmt="%d"), p / "a_ba.txt")[1],  # ints, (D,)
        lambda p: (np.savetxt(p / "a_ba.txt", VEC[None, :], fmt="%d"), p / "a_ba.txt")[
            1
        ],  # one row
        lambda p: (np.savetxt(p / "a_ba.txt", np.c_[VEC, 1 - VEC], fmt="%.1f"), p / "a_ba.txt")[
            1
        ],  # (D,2) floats
        lambda p: (
            np.savetxt(p / "a_ba.txt", np.c_[VEC, 1 - VEC], fmt="%d", delimiter=","),
            p / "a_ba.txt",
        )[1],
        lambda p: _pkl(p / "a_ba.pkl", VEC.astype(np.float64)),
        lambda p: _pkl(p / "a_ba.pkl", VEC.astype(np.int64)),
        lambda p: _pkl(p / "a_ba.pkl", np.c_[VEC, 1 - VEC].astype(np.float32)),
        lambda p: _pkl(p / "a_ba.pkl", VEC.tolist()),
        lambda p: (np.save(p / "a_ba.npy", VEC.astype(np.float64)), p / "a_ba.npy")[1],
        lambda p: (np.save(p / "a_ba.npy", np.c_[VEC, 1 - VEC]), p / "a_ba.npy")[1],
    ],
    ids=[
        "txt-e18",
        "txt-int",
        "txt-row",
        "txt-D2-float",
        "txt-D2-comma",
        "pkl-float",
        "pkl-int",
        "pkl-D2",
        "pkl-list",
        "npy",
        "npy-D2",
    ],
)
def test_read_every_variant(tmp_path: Path, writer) -> None:
    path = writer(tmp_path)
    vec = read_ba_file(path)
    assert vec.dtype == np.int8
    assert vec.tolist() == VEC.tolist()
    assert read_ba_file(path, invert=True).tolist() == (1 - VEC).tolist()


def _raises(path: Path, *fragments: str) -> str:
    with pytest.raises(UserError) as info:
        read_ba_file(path)
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_value_other_than_0_1(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "a_ba.txt", np.array([0, 1, 0.5]))
    _raises(tmp_path / "a_ba.txt", "a_ba.txt", "0.5", "0 or 1")
    _pkl(tmp_path / "b_ba.pkl", np.array([0, 2, 1]))
    _raises(tmp_path / "b_ba.pkl", "b_ba.pkl", "value 2")


def test_nan(tmp_path: Path) -> None:
    (tmp_path / "a_ba.txt").write_text("1\nnan\n0\n")
    _raises(tmp_path / "a_ba.txt", "a_ba.txt", "NaN")
    _pkl(tmp_path / "b_ba.pkl", np.c_[[1.0, np.nan], [0.0, 1.0]])
    _raises(tmp_path / "b_ba.pkl", "b_ba.pkl", "NaN")


def test_complement_checked(tmp_path: Path) -> None:
    _pkl(tmp_path / "a_ba.pkl", np.c_[VEC, VEC])
    _raises(tmp_path / "a_ba.pkl", "a_ba.pkl", "complement")


def test_truncated_and_garbage(tmp_path: Path) -> None:
    full = pickle.dumps(VEC.astype(np.float64))
    (tmp_path / "a_ba.pkl").write_bytes(full[: len(full) // 2])
    _raises(tmp_path / "a_ba.pkl", "a_ba.pkl", "truncated")
    (tmp_path / "b_ba.txt").write_text("1 0\n0 1\n1\n")
    _raises(tmp_path / "b_ba.txt", "b_ba.txt", "line 3")
    (tmp_path / "c_ba.txt").write_text("1\n0\nabc\n")
    _raises(tmp_path / "c_ba.txt", "c_ba.txt", "abc")
    (tmp_path / "d_ba.txt").write_text("")
    _raises(tmp_path / "d_ba.txt", "d_ba.txt", "empty")
    np.save(tmp_path / "e_ba.npy", VEC)
    raw = (tmp_path / "e_ba.npy").read_bytes()
    (tmp_path / "e_ba.npy").write_bytes(raw[:-3])
    _raises(tmp_path / "e_ba.npy", "e_ba.npy", "truncated")
    _pkl(tmp_path / "f_ba.pkl", {"not": "an array"})
    _raises(tmp_path / "f_ba.pkl", "f_ba.pkl")
    _pkl(tmp_path / "g_ba.pkl", np.zeros((3, 4)))
    _raises(tmp_path / "g_ba.pkl", "g_ba.pkl", "shape (3, 4)")


def test_dimension_mismatch_names_both(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "a_ba.txt", VEC, fmt="%d")
    np.savetxt(tmp_path / "b_ba.txt", VEC[:5], fmt="%d")
    with pytest.raises(UserError, match=r"a_ba\.txt has 8, .*b_ba\.txt has 5"):
        read_ba_files([tmp_path / "a_ba.txt", tmp_path / "b_ba.txt"])
    mat = read_ba_files([tmp_path / "a_ba.txt", tmp_path / "a_ba.txt"])
    assert mat.shape == (2, 8) and mat.dtype == np.int8


def _touch_ba(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, VEC, fmt="%d")
    return path


def test_find_recursive_and_missing(tmp_path: Path) -> None:
    _touch_ba(tmp_path / "ba" / "s1" / "deep" / "u1_ba.txt")
    _pkl(tmp_path / "ba" / "u2_ba.pkl", VEC)
    (tmp_path / "ba" / "notes.txt").write_text("x")
    (tmp_path / "ba" / "u3.txt").write_text("1\n")
    index = find_ba_files(tmp_path / "ba")
    assert sorted(index.by_stem) == ["u1", "u2"]
    with pytest.raises(UserError, match="does not exist"):
        find_ba_files(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no BA file"):
        find_ba_files(tmp_path / "empty")


def test_match_extensions_folders_and_counts(tmp_path: Path) -> None:
    root = tmp_path / "ba"
    _touch_ba(root / "s1" / "u1_ba.txt")
    _touch_ba(root / "u2_ba.txt")
    _touch_ba(root / "orphan_ba.txt")
    _touch_ba(root / "x.y_ba.txt")  # stem with a dot, FileName without extension
    res = match_files(["s1/u1.wav", "other/u2.FLAC", "u9.mp3", "x.y"], find_ba_files(root))
    assert res.files[0] == root / "s1" / "u1_ba.txt"
    assert res.files[1] == root / "u2_ba.txt"
    assert res.files[2] is None
    assert res.files[3] == root / "x.y_ba.txt"
    assert res.n_matched == 3
    assert res.unmatched_labels == ["u9.mp3"]
    assert res.unused_files == [root / "orphan_ba.txt"]


def test_shared_stem_folder_decides_or_fails(tmp_path: Path) -> None:
    root = tmp_path / "ba"
    a = _touch_ba(root / "spk1" / "utt_ba.txt")
    b = _touch_ba(root / "spk2" / "utt_ba.txt")
    index = find_ba_files(root)
    res = match_files(["corpus/spk2/utt.wav", "spk1/utt.wav"], index)
    assert res.files == [b, a]
    with pytest.raises(UserError) as info:
        match_files(["utt.wav"], index)
    assert str(a) in str(info.value) and str(b) in str(info.value)
    # same stem in two formats in one folder: ambiguous as well
    root2 = tmp_path / "ba2"
    _touch_ba(root2 / "v_ba.txt")
    _pkl(root2 / "v_ba.pkl", VEC)
    with pytest.raises(UserError, match=r"v_ba\.pkl and .*v_ba\.txt"):
        match_files(["v.wav"], find_ba_files(root2))


def test_two_rows_one_file(tmp_path: Path) -> None:
    root = tmp_path / "ba"
    _touch_ba(root / "u_ba.txt")
    with pytest.raises(UserError, match="both match BA file"):
        match_files(["a/u.wav", "b/u.wav"], find_ba_files(root))


# ---------------------------------------------------------------------------------------
# the restricted unpickler: arrays load, anything else is refused before it runs
# ---------------------------------------------------------------------------------------
def _as_numpy1(data: bytes) -> bytes:
    """The same pickle with numpy 1.x module paths (``numpy.core.*`` for ``numpy._core.*``).

    Opcodes are re-emitted without FRAME (optional in protocol 4/5) so that renamed
    length-prefixed strings need no frame bookkeeping.
    """
    ops = list(pickletools.genops(data))
    out = bytearray()
    for k, (op, arg, pos) in enumerate(ops):
        end = ops[k + 1][2] if k + 1 < len(ops) else len(data)
        raw = data[pos:end]
        if op.name == "FRAME":
            continue
        if op.name == "GLOBAL" and arg.startswith("numpy._core."):
            raw = raw.replace(b"numpy._core.", b"numpy.core.", 1)
        elif op.name == "SHORT_BINUNICODE" and arg.startswith("numpy._core."):
            text = arg.replace("numpy._core.", "numpy.core.", 1).encode()
            raw = b"\x8c" + bytes([len(text)]) + text
        out += raw
    assert b"numpy._core" not in out
    return bytes(out)


PICKLED = {
    "float64-D": VEC.astype(np.float64),
    "int64-D": VEC.astype(np.int64),
    "float32-D": VEC.astype(np.float32),
    "float32-D2": np.stack([VEC, 1 - VEC], axis=1).astype(np.float32),
    "float64-D2": np.c_[VEC, 1 - VEC].astype(np.float64),
    "int64-D2-fortran": np.asfortranarray(np.c_[VEC, 1 - VEC].astype(np.int64)),
    "bool-D": VEC.astype(bool),
    "strided-D": np.repeat(VEC, 2)[::2].astype(
        np.float64
    ),  # not contiguous: _reconstruct even on protocol 5
    "list-of-int": VEC.tolist(),
    "tuple-of-float": tuple(float(v) for v in VEC),
    "list-of-numpy-scalars": [np.float64(v) for v in VEC],
}


NUMPY_PICKLED = [name for name in PICKLED if not name.startswith(("list", "tuple"))]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", list(PICKLED))
def test_every_array_pickle_layout_loads(tmp_path: Path, name: str, protocol: int) -> None:
    (tmp_path / "a_ba.pkl").write_bytes(pickle.dumps(PICKLED[name], protocol=protocol))
    assert read_ba_file(tmp_path / "a_ba.pkl").tolist() == VEC.tolist()


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("name", NUMPY_PICKLED)
def test_numpy1_module_paths_load(tmp_path: Path, name: str, protocol: int) -> None:
    """Files pickled under numpy 1.x name numpy.core.multiarray / numpy.core.numeric."""
    data = _as_numpy1(pickle.dumps(PICKLED[name], protocol=protocol))
    assert b"numpy.core." in data
    with warnings.catch_warnings():  # plain pickle goes through numpy's deprecated numpy.core shim
        warnings.simplefilter("ignore", DeprecationWarning)
        assert np.array_equal(
            np.asarray(pickle.loads(data)), np.asarray(PICKLED[name])
        )  # a valid pickle
    (tmp_path / "a_ba.pkl").write_bytes(data)
    assert read_ba_file(tmp_path / "a_ba.pkl").tolist() == VEC.tolist()


def test_demo_pickles_load(tmp_path: Path) -> None:
    from smp_balr.data.demo import VARIANTS, _encode

    vec = VEC.astype(np.int8)  # as demo.simulate makes them
    for ext, shape, kind in VARIANTS:
        path = tmp_path / f"{shape}_{kind}_ba.{ext}"
        path.write_bytes(_encode(vec, (ext, shape, kind)))
        assert read_ba_file(path).tolist() == VEC.tolist(), (ext, shape, kind)


class _Payload:
    """Unpickling this runs ``call(*args)``: the shape of a malicious BA file."""

    def __init__(self, call, *args) -> None:
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _malicious(marker: Path) -> dict[str, object]:
    import builtins
    import os
    import subprocess

    return {
        "os.system": _Payload(os.system, f"touch {marker}"),
        "subprocess": _Payload(subprocess.call, ["touch", str(marker)]),
        "builtins.open": _Payload(builtins.open, str(marker), "w"),
        "pathlib": _Payload(Path.touch, marker),
        "exec": _Payload(builtins.exec, f"open({str(marker)!r}, 'w').close()"),
        # hidden inside what looks like an array: the payload is an element of a list
        "in-list": [0.0, 1.0, _Payload(os.system, f"touch {marker}")],
        # numpy's own file loader is not on the allow-list either
        "numpy.load": _Payload(np.load, str(marker)),
    }


@pytest.mark.parametrize("kind", list(_malicious(Path("x"))))
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_refused_and_never_runs(tmp_path: Path, kind: str, protocol: int) -> None:
    marker = tmp_path / "pwned"
    payload = _malicious(marker)[kind]
    path = tmp_path / "evil_ba.pkl"
    path.write_bytes(pickle.dumps(payload, protocol=protocol))
    msg = _raises(path, "evil_ba.pkl", "refused", "nothing was run")
    assert not marker.exists(), "the payload ran"
    # one error line per file through the folder reader as well
    with pytest.raises(UserError, match="refused"):
        read_ba_files([path])
    assert not marker.exists()
    assert "." in msg.split("would call ", 1)[1]  # names the refused callable, e.g. posix.system


def test_malicious_pickle_control_runs_under_plain_pickle(tmp_path: Path) -> None:
    """The payload is real: plain pickle.load would have created the marker."""
    marker = tmp_path / "pwned"
    data = pickle.dumps(_malicious(marker)["builtins.open"])
    pickle.loads(data).close()
    assert marker.exists()


def test_npy_with_objects_refused(tmp_path: Path) -> None:
    np.save(tmp_path / "a_ba.npy", np.array([0, 1, None], dtype=object), allow_pickle=True)
    _raises(tmp_path / "a_ba.npy", "a_ba.npy")


def test_value_places_count_from_one(tmp_path: Path) -> None:
    (tmp_path / "a_ba.txt").write_text("1\n0\n1\n0\n1\n0\n7\n")  # the 7 is on line 7
    _raises(tmp_path / "a_ba.txt", "line 7 (BA6)")
    (tmp_path / "b_ba.txt").write_text("1 0 1 5 0\n")  # one row: the 4th value
    _raises(tmp_path / "b_ba.txt", "value 4 (BA3)")
    (tmp_path / "c_ba.txt").write_text("1 0\n0 1\n1 1\n")  # complement broken on line 3
    _raises(tmp_path / "c_ba.txt", "complement", "line 3 (BA2)")
    _pkl(tmp_path / "d_ba.pkl", np.array([0, 1, 0.5]))
    _raises(tmp_path / "d_ba.pkl", "value 3 (BA2)")

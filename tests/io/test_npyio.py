"""Array files a user hands the CLI (calibration, inputs, bound values) are read by
npukit.npyio: headers checked against the stored bytes and the limits before allocation."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from npukit.errors import InputError
from npukit.npyio import load_npy, load_npz
from npukit.testing.fixtures import run_cli

DIGITS = Path(__file__).parents[2] / "examples" / "digits" / "digits_cnn.onnx"


def _npy(header: dict, payload: bytes) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + payload


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return out.getvalue()


def test_round_trip_equals_numpy(tmp_path):
    arrays = {"x": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
              "f": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
              "b": np.array([True, False])}
    np.savez_compressed(tmp_path / "a.npz", **arrays)
    got = load_npz(tmp_path / "a.npz", "a", InputError)
    assert got.keys() == arrays.keys()
    for k, v in arrays.items():
        assert got[k].dtype == v.dtype and np.array_equal(got[k], v)
    np.save(tmp_path / "x.npy", arrays["f"])
    assert np.array_equal(load_npy(tmp_path / "x.npy", "x", InputError), arrays["f"])


def test_declared_size_beyond_the_limit_is_refused_before_allocation():
    bomb = _zip({"x.npy": _npy({"descr": "<f4", "fortran_order": False, "shape": (1 << 20, 1 << 20)}, bytes(16))})
    assert len(bomb) < 1000
    with pytest.raises(InputError, match="max_tensor_elements"):
        load_npz(bomb, "calibration", InputError)


def test_header_inconsistent_with_stored_bytes():
    short = _zip({"x.npy": _npy({"descr": "<f4", "fortran_order": False, "shape": (1000, 1000)}, bytes(16))})
    with pytest.raises(InputError, match="declares 4000000 bytes of data but 16 are stored"):
        load_npz(short, "calibration", InputError)


def test_object_arrays_and_garbage(tmp_path):
    np.save(tmp_path / "o.npy", np.array([1, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match="cannot read o: it holds dtype object"):
        load_npy(tmp_path / "o.npy", "o", InputError)
    (tmp_path / "t.npy").write_bytes(b"\x93NUMPY\x01\x00")
    with pytest.raises(InputError, match="cannot read t"):
        load_npy(tmp_path / "t.npy", "t", InputError)
    for junk in (b"", b"PK\x03\x04garbage", b"hello"):
        with pytest.raises(InputError, match="cannot read junk"):
            load_npz(junk, "junk", InputError)


def test_cli_refuses_a_calibration_bomb_in_one_line(tmp_path):
    bomb = tmp_path / "calib.npz"
    bomb.write_bytes(_zip({"input.npy": _npy({"descr": "<f4", "fortran_order": False,
                                               "shape": (1 << 16, 1 << 16)}, bytes(64))}))
    r = run_cli("compile", DIGITS, "--calib", bomb, "-o", tmp_path / "m.npub")
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "max_tensor_elements" in r.stderr

"""Clip with a computed bound: openWakeWord's ONNX log-mel spectrogram floors its decibels at
the spectrogram's maximum less 80 dB (Clip(x, ReduceMax(x) - 80, inf)). Such a Clip imports
as Max / Min with the bound tensor, so it runs on the NPU instead of the host."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx_testutil import check_against_onnxruntime, model_bytes, node, onnxruntime_outputs, ops

import npukit
from npukit.ir.graph import Op

SHAPE = (1, 1, 8, 32)


def _top_db() -> bytes:
    nodes = [node("ReduceMax", ["x"], ["top"], keepdims=0),
             node("Sub", ["top", "db"], ["floor"]),
             node("Clip", ["x", "floor", "inf"], ["y"])]
    return model_bytes(nodes, {"x": SHAPE}, ["y"], {"db": np.float32(80.0), "inf": np.float32(np.inf)})


def _band() -> bytes:
    """A computed upper bound (the mean; ONNX's bounds are scalars) and a constant lower one."""
    nodes = [node("ReduceMean", ["x"], ["mean"], keepdims=0),
             node("Clip", ["x", "lo", "mean"], ["y"])]
    return model_bytes(nodes, {"x": SHAPE}, ["y"], {"lo": np.float32(-1.0)})


@pytest.mark.parametrize("make", [_top_db, _band])
def test_import_matches_onnxruntime(make):
    g = check_against_onnxruntime(make())
    assert Op.MAXIMUM in ops(g) or Op.MINIMUM in ops(g)


def test_infinite_bound_is_left_out():
    g = check_against_onnxruntime(_top_db())
    assert Op.MINIMUM not in ops(g)


def test_decibel_floor_on_the_npu(tmp_path):
    path = tmp_path / "top_db.onnx"
    path.write_bytes(mb := _top_db())
    rng = np.random.default_rng(5)
    # decibels over a wide range, so the floor cuts some of them
    calib = (rng.uniform(-120.0, 40.0, size=(12, *SHAPE))).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert not prog.profile().host_ops
    step = 160.0 / 255
    for x in calib[:4]:
        want, got = onnxruntime_outputs(mb, {"x": x})["y"], prog.run({"x": x})["y"]
        assert (want > x).any()                       # the floor is active
        np.testing.assert_allclose(got, want, atol=2 * step)

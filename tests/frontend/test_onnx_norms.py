"""ONNX norms composed of NPU operators (ReduceSumSquare, ReduceL1, ReduceL2, LpNormalization,
InstanceNormalization, GroupNormalization, LogSoftmax), against onnxruntime: every layer on the NPU, each
output within a few of its int8 steps."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit

CASES = [
    ("ReduceSumSquare", {"axes": [1], "keepdims": 1}, (1, 8, 4, 4)),
    ("ReduceSumSquare", {"axes": [-1], "keepdims": 0}, (2, 24)),
    ("ReduceL1", {"axes": [2, 3], "keepdims": 1}, (1, 8, 4, 4)),
    ("ReduceL2", {"axes": [1], "keepdims": 0}, (1, 8, 4, 4)),
    ("ReduceL2", {"axes": [-1], "keepdims": 1}, (3, 32)),
    ("LpNormalization", {"axis": 1, "p": 2}, (1, 8, 4, 4)),
    ("LpNormalization", {"axis": -1, "p": 2}, (1, 128)),      # an embedding head's L2 normalisation
    ("LpNormalization", {"axis": -1, "p": 1}, (2, 16)),
    ("LogSoftmax", {"axis": -1}, (2, 30)),        # a CTC or classifier head's log-probabilities
    ("LogSoftmax", {"axis": 1}, (1, 10, 4, 4)),
]


RNG = np.random.default_rng(7)
AFFINE = {"s": RNG.uniform(0.5, 2.0, 8).astype(np.float32), "b": RNG.normal(size=8).astype(np.float32)}
GROUPED = [
    ("InstanceNormalization", {"epsilon": 1e-5}, (1, 8, 6, 6), AFFINE, 13),
    ("InstanceNormalization", {}, (2, 8, 10), AFFINE, 13),
    ("GroupNormalization", {"num_groups": 2, "epsilon": 1e-5}, (1, 8, 5, 5), AFFINE, 21),       # per channel
    ("GroupNormalization", {"num_groups": 4}, (1, 8, 4, 4),
     {k: v[:4].copy() for k, v in AFFINE.items()}, 18),                                        # per group
]


@pytest.mark.parametrize("op, attrs, shape", CASES)
def test_norm_runs_on_the_npu_close_to_onnxruntime(tmp_path, op, attrs, shape):
    mb = model_bytes([helper.make_node(op, ["x"], ["y"], **attrs)], {"x": shape}, ["y"])
    _check(tmp_path, mb, shape)


@pytest.mark.parametrize("op, attrs, shape, affine, opset", GROUPED)
def test_grouped_norm_runs_on_the_npu_close_to_onnxruntime(tmp_path, op, attrs, shape, affine, opset):
    mb = model_bytes([helper.make_node(op, ["x", "s", "b"], ["y"], **attrs)], {"x": shape}, ["y"], affine, opset)
    _check(tmp_path, mb, shape)


def _check(tmp_path, mb: bytes, shape: tuple[int, ...]) -> None:
    (tmp_path / "m.onnx").write_bytes(mb)
    rng = np.random.default_rng(0)
    calib = (rng.normal(size=(8,) + shape) + 0.3).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(tmp_path / "m.onnx", "npu-m", calibration={"x": calib}, sqnr=False)
    assert {layer.target for layer in prog.program.layers} == {"npu"}
    step = prog.qgraph.tensors[prog.qgraph.outputs[0]].quant.s
    for x in calib[:3]:
        want, got = onnxruntime_outputs(mb, {"x": x})["y"], prog.run({"x": x})["y"]
        assert got.shape == want.shape
        err = np.abs(got - want).max()
        assert err <= 4 * step, (err / step, step)

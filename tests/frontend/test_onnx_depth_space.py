"""ONNX DepthToSpace (DCR, CRD) and SpaceToDepth: imported graphs match onnxruntime in float;
compiled, they run on the NPU as pure data movement (every int8 code moved, none changed)."""
from __future__ import annotations

import numpy as np
import pytest
from onnx_testutil import check_against_onnxruntime, model_bytes, node, onnxruntime_outputs

from npukit.api import compile as npu_compile
from npukit.errors import ModelError
from npukit.frontend.onnx import load_onnx

CASES = [  # op, attributes, NCHW input shape
    ("DepthToSpace", {"blocksize": 2, "mode": "DCR"}, (1, 12, 4, 5)),
    ("DepthToSpace", {"blocksize": 2, "mode": "CRD"}, (1, 12, 4, 5)),
    ("DepthToSpace", {"blocksize": 3, "mode": "CRD"}, (2, 18, 3, 4)),
    ("DepthToSpace", {"blocksize": 2}, (1, 256, 48, 64)),          # 786 KB: larger than ABUF
    ("SpaceToDepth", {"blocksize": 2}, (1, 3, 8, 6)),
    ("SpaceToDepth", {"blocksize": 4}, (2, 5, 8, 12)),
]


def _model(op, attrs, shape) -> bytes:
    return model_bytes([node(op, ["x"], ["y"], **attrs)], {"x": shape}, ["y"])


@pytest.mark.parametrize("op,attrs,shape", CASES[:3] + CASES[4:])
def test_float_import_matches_onnxruntime(op, attrs, shape):
    check_against_onnxruntime(_model(op, attrs, shape), rtol=0, atol=0)


@pytest.mark.parametrize("op,attrs,shape", CASES)
def test_compiled_moves_codes_like_onnxruntime(op, attrs, shape, tmp_path):
    mb = _model(op, attrs, shape)
    path = tmp_path / "m.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(0)
    calib = rng.uniform(-3, 3, size=(4, *shape)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert prog.profile().host_ops == []
    (xi,), (yo,) = prog.program.inputs, prog.program.outputs
    assert (xi.scale, xi.zero_point) == (yo.scale, yo.zero_point)
    codes = rng.integers(-128, 128, size=shape).astype(np.int8)
    got = prog.run_int({"x": codes})["y"]
    want = onnxruntime_outputs(mb, {"x": codes.astype(np.float32)})["y"]
    np.testing.assert_array_equal(got, want.astype(np.int8))


def test_indivisible_channels_are_refused():
    with pytest.raises(ModelError, match="multiple of block size"):
        load_onnx(_model("DepthToSpace", {"blocksize": 2}, (1, 6, 2, 2)))

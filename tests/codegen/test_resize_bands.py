"""RESIZE planes larger than ABUF run in bands of output rows, each with the input rows it reads.

Oracles: the whole-plane integer kernels (pinned to LiteRT's reference RESIZE_BILINEAR /
RESIZE_NEAREST_NEIGHBOR in tests/frontend), which the bands stacked must equal exactly; the
integer reference, which the simulator must equal; onnxruntime's float Resize, within int8
steps."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.isa import instructions as I
from npukit.kernels import kernels_vpu as kv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from onnx_testutil import onnxruntime_outputs  # noqa: E402
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

GEOMETRIES = [((7, 5), (16, 9), False, True), ((9, 6), (4, 11), False, False), ((8, 8), (15, 15), True, False),
              ((5, 3), (13, 7), False, False), ((12, 4), (5, 4), False, True)]


@pytest.mark.parametrize("bilinear", [True, False])
@pytest.mark.parametrize("in_hw,out_hw,align,half", GEOMETRIES)
@pytest.mark.parametrize("rows", [1, 2, 5])
def test_bands_stacked_equal_the_whole_plane(bilinear, in_hw, out_hw, align, half, rows):
    x = np.random.default_rng(rows).integers(-128, 128, (1, *in_hw, 3)).astype(np.int8)
    fn = kv.resize_bilinear if bilinear else kv.resize_nearest
    whole = fn(x, out_hw, align, half)
    parts = []
    for r0 in range(0, out_hw[0], rows):
        r1 = min(r0 + rows, out_hw[0])
        i0, i1 = kv.resize_band_rows(bilinear, in_hw[0], out_hw[0], align, half, r0, r1)
        band = kv.Band(r0, i0, in_hw[0], out_hw[0])
        parts.append(fn(x[:, i0:i1], (r1 - r0, out_hw[1]), align, half, band))
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole)


def _resize_model(in_hw, out_hw, mode: str, coord: str) -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, *in_hw])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
             numpy_helper.from_array(np.array([1, 2, *out_hw], np.int64), "sizes")]
    graph = helper.make_graph([helper.make_node("Resize", ["x", "roi", "", "sizes"], ["y"], **attrs)],
                              "resize", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString()


@pytest.mark.parametrize("mode,coord,out_hw", [("linear", "half_pixel", (96, 128)),
                                               ("linear", "align_corners", (95, 127)),
                                               ("nearest", "asymmetric", (96, 128))])
def test_banded_resize_on_the_npu(mode, coord, out_hw, tmp_path):
    """A 48 x 64 -> 96 x 128 resize on a 16 KiB ABUF: one channel's planes need 15 KiB, twice
    that double-buffered, so it runs in bands; simulator = reference, and onnxruntime within
    two int8 steps (align_corners at 95 x 127, where LiteRT's Q10 scale is exact: 47 / 94)."""
    path = tmp_path / "resize.onnx"
    path.write_bytes(mb := _resize_model((48, 64), out_hw, mode, coord))
    rng = np.random.default_rng(1)
    calib = rng.uniform(-1, 1, (4, 1, 2, 48, 64)).astype(np.float32)
    arch = small_arch(16, 16, 16, 8, 8, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = npukit.compile(path, arch, calibration={"x": calib}, sqnr=False)
    resizes = [i for i in model.program.instructions if isinstance(i, I.Resize)]
    assert all(layer.target == "npu" for layer in model.program.layers)
    assert len(resizes) > 2 and all(i.whole_in_h == 48 and i.whole_out_h == out_hw[0] for i in resizes)
    assert_sim_equals_reference(model, [{"x": calib[i]} for i in range(2)])
    step = float(model.program.outputs[0].scale)
    for i in range(2):
        got, want = model.run({"x": calib[i]})["y"], onnxruntime_outputs(mb, {"x": calib[i]})["y"]
        assert np.abs(got - want).max() <= 2 * step

"""TFLite frontend behaviour: quantisation kept as written, float I/O around int8 graphs,
float models through npukit's quantiser, and clear errors for what it cannot take."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.errors import ModelError, UnsupportedOpError
from npukit.frontend.tflite import load_tflite
from npukit.testing import mxu_models
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import build_single_op, run_reference
from npukit.testing.tflite_builder import options as _opts
from tflite_testutil import build_chain


def test_per_axis_and_per_tensor_quantisation_is_kept(tmp_path):
    model, _ = mxu_models.conv2d_model(7, (6, 6), 3, 5, (3, 3))
    path = tmp_path / "conv.tflite"
    path.write_bytes(model)
    g = load_tflite(path)
    conv = g.nodes[0]
    w = g.tensors[conv.inputs[1]]
    x_spec = tfl.ModelT.InitFromPackedBuf(bytearray(model), 0).subgraphs[0].tensors
    by_name = {t.name.decode(): t for t in x_spec}
    want = by_name[w.name].quantization
    assert w.quant.axis == 0 and np.allclose(w.quant.scale, want.scale) and len(w.quant.scale) == 5
    assert g.tensors[g.inputs[0]].quant.zero_point == tuple(by_name[g.inputs[0]].quantization.zeroPoint)


def test_float_io_through_boundary_quantize_dequantize(tmp_path):
    """float in -> QUANTIZE -> ADD -> DEQUANTIZE -> float out: prog.run takes and returns float32
    and equals the reference interpreter on the same float inputs."""
    specs = [T("in", (1, 4, 4, 3), "float32"), T("b", (1, 4, 4, 3), "float32"),
             T("qa", (1, 4, 4, 3), scale=0.05, zero_point=3), T("qb", (1, 4, 4, 3), scale=0.04, zero_point=-7),
             T("sum", (1, 4, 4, 3), scale=0.08, zero_point=-2), T("out", (1, 4, 4, 3), "float32")]
    ops = [("QUANTIZE", ["in"], ["qa"], None), ("QUANTIZE", ["b"], ["qb"], None),
           ("ADD", ["qa", "qb"], ["sum"], tfl.AddOptionsT()), ("DEQUANTIZE", ["sum"], ["out"], None)]
    model = build_chain(ops, specs, ["in", "b"], ["out"])
    path = tmp_path / "io.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    rng = np.random.default_rng(0)
    for _ in range(5):
        xs = [rng.uniform(-6, 6, (1, 4, 4, 3)).astype(np.float32) for _ in range(2)]
        got = prog.run({"in": xs[0], "b": xs[1]})["out"]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, run_reference(model, xs)[0])


def test_float_model_goes_through_npukit_quantisation(tmp_path):
    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.3, (4, 3, 3, 2)).astype(np.float32)
    b = rng.normal(0, 0.1, 4).astype(np.float32)
    model = build_single_op("CONV_2D", [T("x", (1, 6, 6, 2), "float32"), T("w", w.shape, "float32", data=w),
                                        T("b", (4,), "float32", data=b)],
                            [T("y", (1, 6, 6, 4), "float32")],
                            _opts(tfl.Conv2DOptionsT, padding=tfl.Padding.SAME, strideH=1, strideW=1,
                                  dilationHFactor=1, dilationWFactor=1))
    path = tmp_path / "float.tflite"
    path.write_bytes(model)
    assert not load_tflite(path).is_quantised
    calib = rng.uniform(-1, 1, (16, 1, 6, 6, 2)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib})
    x = calib[0]
    want = run_reference(model, [x])[0]
    got = prog.run({"x": x})["y"]
    assert got.dtype == np.float32
    assert np.max(np.abs(got - want)) < 0.05 * np.max(np.abs(want))


@pytest.mark.parametrize("exponent", [0.3, 2.0, -0.5])
def test_float_pow_by_a_constant_is_one_table_on_the_npu(tmp_path, exponent):
    """BirdNET's magnitude scaling: POW by a constant scalar exponent, against LiteRT."""
    model = build_single_op("POW", [T("x", (1, 8, 16), "float32"),
                                    T("p", (), "float32", data=np.array(exponent, np.float32))],
                            [T("y", (1, 8, 16), "float32")])
    path = tmp_path / "pow.tflite"
    path.write_bytes(model)
    calib = np.random.default_rng(4).uniform(0.5, 4, (8, 1, 8, 16)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib})
    assert prog.profile().host_ops == [] and [la.op for la in prog.program.layers] == ["unary"]
    for x in calib[:3]:
        want = run_reference(model, [x])[0]
        assert np.max(np.abs(prog.run({"x": x})["y"] - want)) <= 2 * prog.program.outputs[0].scale


def test_pow_by_a_tensor_runs_on_the_host(tmp_path):
    model = build_single_op("POW", [T("x", (1, 8), "float32"), T("p", (1, 8), "float32")], [T("y", (1, 8), "float32")])
    path = tmp_path / "pow.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m", calibration={"x": np.full((2, 1, 8), 2.0, np.float32),
                                                  "p": np.full((2, 1, 8), 0.5, np.float32)})
    assert [h["reason"] for h in prog.profile().host_ops] == ["no NPU kernel for TFLite POW: only a float POW by a "
                                                              "constant scalar exponent runs on the NPU"]


@pytest.mark.parametrize("dtype, axes", [("int8", [1]), ("int8", [1, -1]), ("float32", [2])])
def test_reverse_is_a_backward_slice_on_the_npu(tmp_path, dtype, axes):
    """REVERSE_V2 (BirdNET flips its mel axis) against LiteRT: int8 codes exactly."""
    q = {"scale": 0.1, "zero_point": 3} if dtype == "int8" else {}
    model = build_single_op("REVERSE_V2", [T("x", (2, 5, 6), dtype, **q),
                                           T("axes", (len(axes),), "int32", data=np.array(axes, np.int32))],
                            [T("y", (2, 5, 6), dtype, **q)])
    path = tmp_path / "reverse.tflite"
    path.write_bytes(model)
    rng = np.random.default_rng(5)
    calib = rng.uniform(-1, 1, (8, 2, 5, 6)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib} if dtype == "float32" else None)
    assert prog.profile().host_ops == []
    x = rng.integers(-128, 128, (2, 5, 6)).astype(np.int8) if dtype == "int8" else calib[0]
    got, want = prog.run({"x": x})["y"], run_reference(model, [x])[0]
    if dtype == "int8":
        np.testing.assert_array_equal(got, want)
    else:
        assert np.max(np.abs(got - want)) <= prog.program.outputs[0].scale


def test_unsupported_operator_is_named(tmp_path):
    model = build_single_op("CUMSUM", [T("x", (1, 8), scale=0.1), T("axis", (1,), "int32", data=np.array([1], np.int32))],
                            [T("y", (1, 8), scale=0.1)])
    path = tmp_path / "cumsum.tflite"
    path.write_bytes(model)
    with pytest.raises(UnsupportedOpError, match="CUMSUM"):
        load_tflite(path)


def test_int16_activations_are_a_clear_error(tmp_path):
    """RELU_N1_TO_1 has no int16 kernel in LiteRT (its RELU and RELU6 have one, and npukit's)."""
    model = build_single_op("RELU_N1_TO_1", [T("x", (1, 8), "int16", scale=0.001)], [T("y", (1, 8), "int16", scale=0.001)])
    path = tmp_path / "relu16.tflite"
    path.write_bytes(model)
    with pytest.raises(UnsupportedOpError, match="int16"):
        load_tflite(path)


def test_garbage_file_is_a_model_error(tmp_path):
    path = tmp_path / "junk.tflite"
    path.write_bytes(b"\x10\x00\x00\x00TFL3" + bytes(range(40)))
    with pytest.raises(ModelError):
        load_tflite(path)
    path.write_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="TFL3"):
        load_tflite(path)

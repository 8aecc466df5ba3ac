"""ONNX element-wise functions compiled to one NPU table each: on the NPU, and within one
output LSB of onnxruntime's float result on the quantised input (the only approximation is
the output's rounding: the table is exact per input code)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import helper
from onnx_testutil import model_bytes, onnxruntime_outputs

import npukit
from npukit.kernels import kernels_vpu as kv

SHAPE = (1, 3, 5, 7)
POSITIVE, UNIT, ANY = (0.05, 4.0), (-0.95, 0.95), (-3.0, 3.0)
CASES = [
    ("Log", {}, POSITIVE), ("Exp", {}, ANY), ("Reciprocal", {}, POSITIVE), ("Neg", {}, ANY),
    ("Abs", {}, ANY), ("Sqrt", {}, POSITIVE), ("Erf", {}, ANY), ("Softplus", {}, ANY),
    ("Softsign", {}, ANY), ("Elu", {"alpha": 0.7}, ANY), ("Selu", {}, ANY), ("Celu", {"alpha": 2.0}, ANY),
    ("ThresholdedRelu", {"alpha": 0.5}, ANY), ("Shrink", {"lambd": 0.8, "bias": 0.3}, ANY), ("Mish", {}, ANY),
    ("Sin", {}, ANY), ("Cos", {}, ANY),
    ("Atan", {}, ANY), ("Asin", {}, UNIT), ("Acos", {}, UNIT), ("Atanh", {}, UNIT), ("Sinh", {}, ANY),
    ("Cosh", {}, ANY), ("Asinh", {}, ANY), ("Acosh", {}, (1.05, 4.0)), ("Tan", {}, (-1.2, 1.2)),
    ("Sign", {}, ANY), ("Floor", {}, ANY), ("Ceil", {}, ANY), ("Round", {}, ANY),
]


def _compile(tmp_path, op_type, attrs, domain, exponent=None):
    opset = 18 if op_type == "Mish" else 13
    ins, inits = (["x"], {}) if exponent is None else (["x", "e"], {"e": np.float32(exponent)})
    mb = model_bytes([helper.make_node(op_type, ins, ["y"], **attrs)], {"x": SHAPE}, ["y"], inits, opset=opset)
    path = tmp_path / f"{op_type}.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(7)
    calib = rng.uniform(*domain, size=(8, *SHAPE)).astype(np.float32)
    calib[0].flat[:2] = domain                       # the whole domain in the calibrated range
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mb, npukit.compile(path, "npu-m", calibration={"x": calib})


POWERS = [("Pow", {}, ANY, 2.0), ("Pow", {}, ANY, 3.0), ("Pow", {}, POSITIVE, 0.5), ("Pow", {}, POSITIVE, -1.5)]


@pytest.mark.parametrize("op_type,attrs,domain,exponent", [(*c, None) for c in CASES] + POWERS,
                         ids=[c[0] for c in CASES] + [f"Pow{p[3]:g}" for p in POWERS])
def test_unary_within_one_lsb_of_onnxruntime(tmp_path, op_type, attrs, domain, exponent):
    mb, prog = _compile(tmp_path, op_type, attrs, domain, exponent)
    assert [(la.op, la.target) for la in prog.program.layers] == [("unary", "npu")]
    assert prog.profile().host_ops == []
    x_io, y_io = prog.program.inputs[0], prog.program.outputs[0]
    rng = np.random.default_rng(1)
    x = rng.uniform(*domain, size=SHAPE).astype(np.float32)
    x_q = kv.dequantize(kv.quantize(x, x_io.scale, x_io.zero_point), x_io.scale, x_io.zero_point)
    want = onnxruntime_outputs(mb, {"x": x_q.astype(np.float32)})["y"]
    lo, hi = (np.array([-128, 127]) - y_io.zero_point) * y_io.scale
    got = prog.run({"x": x})["y"]
    assert got.shape == want.shape
    err = np.abs(got - np.clip(want, lo, hi))
    assert err.max() <= y_io.scale * 1.001, (op_type, float(err.max() / y_io.scale))


def test_pow_by_an_activation_runs_on_the_host(tmp_path):
    mb = model_bytes([helper.make_node("Pow", ["x", "e"], ["y"], name="pow")], {"x": SHAPE, "e": SHAPE}, ["y"])
    path = tmp_path / "pow.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(3)
    calib = {"x": rng.uniform(0.5, 2, (8, *SHAPE)).astype(np.float32),
             "e": rng.uniform(-1, 2, (8, *SHAPE)).astype(np.float32)}
    prog = npukit.compile(path, "npu-m", calibration=calib)
    (host,) = prog.profile().host_ops
    assert host["node"] == "pow" and "not a constant scalar" in host["reason"]
    feeds = {k: v[0] for k, v in calib.items()}
    want = onnxruntime_outputs(mb, feeds)["y"]
    assert np.abs(prog.run(feeds)["y"] - want).max() < 0.05 * np.abs(want).max()


def test_comparisons_and_logic_match_onnxruntime_off_the_comparison_grid(tmp_path):
    """Greater / Less / Equal / ... of int8 operands compare their values in units of 1/256
    (LiteRT's rescaling); away from ties closer than that grid, the booleans are onnxruntime's
    on the quantised inputs. And / Or / Xor / Not combine them exactly; bool outputs stay bool."""
    import onnx
    from onnx import TensorProto
    nodes = [helper.make_node("Greater", ["x", "y"], ["g"]), helper.make_node("LessOrEqual", ["x", "c"], ["l"]),
             helper.make_node("Less", ["c", "y"], ["cy"]), helper.make_node("Not", ["l"], ["nl"]),
             helper.make_node("And", ["g", "nl"], ["a"]), helper.make_node("Equal", ["x", "y"], ["e"]),
             helper.make_node("Or", ["a", "e"], ["o"]), helper.make_node("Xor", ["o", "cy"], ["z"]),
             helper.make_node("GreaterOrEqual", ["y", "x"], ["ge"])]
    model = onnx.load_model_from_string(model_bytes(nodes, {"x": SHAPE, "y": SHAPE}, ["a", "o", "z", "ge"],
                                                    {"c": np.float32(0.3)}))
    for out in model.graph.output:
        out.type.tensor_type.elem_type = TensorProto.BOOL
    mb = model.SerializeToString()
    path = tmp_path / "cmp.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(2)
    calib = {"x": rng.uniform(-2, 2, size=(8, *SHAPE)).astype(np.float32),
             "y": rng.uniform(-1, 1, size=(8, *SHAPE)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration=calib)
    assert prog.profile().host_ops == []
    assert {la.op for la in prog.program.layers} >= {"compare", "logical", "logical_not"}
    feeds = {"x": rng.uniform(-2, 2, size=SHAPE).astype(np.float32),
             "y": rng.uniform(-1, 1, size=SHAPE).astype(np.float32)}
    io = {t.name: t for t in prog.program.inputs}
    q = {n: kv.dequantize(kv.quantize(v, io[n].scale, io[n].zero_point), io[n].scale, io[n].zero_point)
         for n, v in feeds.items()}
    want = onnxruntime_outputs(mb, {n: v.astype(np.float32) for n, v in q.items()})
    got = prog.run(feeds)
    clear = (np.abs(q["x"] - q["y"]) > 2 / 256) & (np.abs(q["x"] - 0.3) > 2 / 256) & (np.abs(q["y"] - 0.3) > 2 / 256)
    assert clear.mean() > 0.7
    for name in ("a", "o", "z", "ge"):
        assert got[name].dtype == np.bool_ and got[name].shape == want[name].shape
        np.testing.assert_array_equal(got[name][clear], want[name][clear], err_msg=name)


def test_where_on_a_data_dependent_condition_runs_on_the_npu(tmp_path):
    """Where(x > y, x, -1): x, the constant and the output share one quantisation, so the
    chosen code is copied; equal to onnxruntime on the quantised inputs off the 1/256 grid."""
    nodes = [helper.make_node("Greater", ["x", "y"], ["g"]), helper.make_node("Where", ["g", "x", "m"], ["w"]),
             helper.make_node("Where", ["g", "y", "x"], ["v"])]
    mb = model_bytes(nodes, {"x": SHAPE, "y": SHAPE}, ["w", "v"], {"m": np.float32(-1.0)})
    path = tmp_path / "where.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(4)
    calib = {n: rng.uniform(-2, 2, size=(8, *SHAPE)).astype(np.float32) for n in ("x", "y")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration=calib)
    assert prog.profile().host_ops == []
    assert [la.op for la in prog.program.layers].count("where") == 2
    feeds = {n: rng.uniform(-2, 2, size=SHAPE).astype(np.float32) for n in ("x", "y")}
    io = {t.name: t for t in prog.program.inputs}
    q = {n: kv.dequantize(kv.quantize(v, io[n].scale, io[n].zero_point), io[n].scale, io[n].zero_point)
         for n, v in feeds.items()}
    want = onnxruntime_outputs(mb, {n: v.astype(np.float32) for n, v in q.items()})
    got = prog.run(feeds)
    clear = np.abs(q["x"] - q["y"]) > 2 / 256
    assert clear.mean() > 0.9
    for name in ("w", "v"):
        scale = next(t.scale for t in prog.program.outputs if t.name == name)
        assert np.abs(got[name] - want[name])[clear].max() <= scale * 0.501, name


def test_poles_in_calibration_saturate(tmp_path):
    """Log(Relu(x)) meets log 0 = -inf during calibration: the range ignores it and the
    table saturates there, as onnxruntime's -inf clipped to the int8 range."""
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Log", ["r"], ["y"])]
    mb = model_bytes(nodes, {"x": SHAPE}, ["y"])
    path = tmp_path / "logrelu.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": rng.normal(size=(8, *SHAPE)).astype(np.float32)})
    x = rng.normal(size=SHAPE).astype(np.float32)
    got = prog.run({"x": x})["y"]
    y_io = prog.program.outputs[0]
    lowest = (-128 - y_io.zero_point) * y_io.scale
    assert np.all(got[x <= 0] == np.float32(lowest)) and np.all(np.isfinite(got))
    assert got[x > 1].min() > lowest


@pytest.mark.parametrize("shapes", [((1, 1, 5, 7), (1, 3, 5, 7), ()), ((1, 3, 1, 7), (), (1, 1, 5, 1)),
                                    ((2, 1, 5, 7), (1, 3, 5, 1), (7,)),
                                    ((1, 1, 40, 48), (1, 12, 40, 48), ()),        # blocks of the output
                                    ((1, 1, 64, 64), (1, 20, 64, 64), ())])       # a constant read with zero strides
def test_where_with_broadcast_operands(tmp_path, shapes):
    """Condition, x and y of different (broadcast) shapes, activations or constants: the NPU
    reads each with zero strides; equal to onnxruntime off the comparison grid."""
    cs, xs, ys = shapes
    out = np.broadcast_shapes(cs, xs, ys)
    inputs = {"p": cs, "q": cs}
    inits = {}
    if xs:
        inputs["x"] = xs
    else:
        inits["x"] = np.float32(0.25)
    if ys:
        inputs["y"] = ys
    else:
        inits["y"] = np.float32(-0.5)
    nodes = [helper.make_node("Less", ["p", "q"], ["c"]), helper.make_node("Where", ["c", "x", "y"], ["w"])]
    mb = model_bytes(nodes, inputs, ["w"], inits)
    path = tmp_path / "wb.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(6)
    calib = {n: rng.uniform(-1, 1, size=(8, *s)).astype(np.float32) for n, s in inputs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-s", calibration=calib)
    assert prog.profile().host_ops == []
    feeds = {n: rng.uniform(-1, 1, size=s).astype(np.float32) for n, s in inputs.items()}
    io = {t.name: t for t in prog.program.inputs}
    q = {n: kv.dequantize(kv.quantize(v, io[n].scale, io[n].zero_point), io[n].scale, io[n].zero_point)
         for n, v in feeds.items()}
    want = onnxruntime_outputs(mb, {n: v.astype(np.float32) for n, v in q.items()})["w"]
    got = prog.run(feeds)["w"]
    assert got.shape == want.shape == out
    clear = np.broadcast_to(np.abs(q["p"] - q["q"]) > 2 / 256, out)
    scale = prog.program.outputs[0].scale
    assert np.abs(got - want)[clear].max() <= scale * 0.501


def test_boolean_inputs_feed_logic_and_where(tmp_path):
    """A bool graph input (a mask) stays bytes 0 / 1: Not, And with a comparison, and Where
    pick codes exactly as onnxruntime picks values (off the comparison grid)."""
    import onnx
    from onnx import TensorProto
    nodes = [helper.make_node("Not", ["m"], ["nm"]), helper.make_node("Greater", ["x", "c"], ["g"]),
             helper.make_node("And", ["nm", "g"], ["a"]), helper.make_node("Where", ["a", "x", "c"], ["w"])]
    model = onnx.load_model_from_string(model_bytes(nodes, {"x": SHAPE, "m": SHAPE}, ["w", "a"],
                                                    {"c": np.float32(0.1)}))
    model.graph.input[1].type.tensor_type.elem_type = TensorProto.BOOL
    model.graph.output[1].type.tensor_type.elem_type = TensorProto.BOOL
    mb = model.SerializeToString()
    path = tmp_path / "mask.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(8)
    calib = {"x": rng.uniform(-1, 1, (8, *SHAPE)).astype(np.float32), "m": rng.integers(0, 2, (8, *SHAPE)).astype(bool)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration=calib)
    assert prog.profile().host_ops == []
    x, m = rng.uniform(-1, 1, SHAPE).astype(np.float32), rng.integers(0, 2, SHAPE).astype(bool)
    io = prog.program.inputs[0] if prog.program.inputs[0].name == "x" else prog.program.inputs[1]
    x_q = kv.dequantize(kv.quantize(x, io.scale, io.zero_point), io.scale, io.zero_point).astype(np.float32)
    want = onnxruntime_outputs(mb, {"x": x_q, "m": m})
    got = prog.run({"x": x, "m": m})
    clear = np.abs(x_q - 0.1) > 2 / 256
    assert got["a"].dtype == np.bool_
    np.testing.assert_array_equal(got["a"][clear], want["a"][clear])
    scale = next(t.scale for t in prog.program.outputs if t.name == "w")
    assert np.abs(got["w"] - want["w"])[clear].max() <= 0.501 * scale

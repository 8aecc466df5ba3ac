"""Element-wise, pooling and data-movement ONNX imports against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from onnx_testutil import check_against_onnxruntime, model_bytes, node, ops

from npukit.ir.graph import Op

RNG = np.random.default_rng(3)
X4 = {"x": (2, 3, 6, 7)}


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def unary(op_type, opset=13, inputs=(), inits=None, **attrs):
    return model_bytes([node(op_type, ["x", *inputs], ["y"], **attrs)], X4, ["y"], inits or {}, opset)


@pytest.mark.parametrize("mb", [
    unary("Relu"), unary("Sigmoid"), unary("Tanh"), unary("HardSwish", opset=14),
    unary("LeakyRelu", alpha=0.2), unary("LeakyRelu"),
    unary("HardSigmoid", alpha=0.3, beta=0.4),
    unary("PRelu", inputs=["s"], inits={"s": rand(3, 1, 1)}),
    unary("PRelu", inputs=["s"], inits={"s": rand(7)}),
    unary("Clip", opset=6, min=-0.5, max=1.0),
    unary("Clip", opset=13, inputs=["lo", "hi"], inits={"lo": np.float32(0), "hi": np.float32(6)}),
    unary("Clip", opset=13, inputs=["lo"], inits={"lo": np.float32(-1)}),
    unary("Clip", opset=13, inputs=["", "hi"], inits={"hi": np.float32(0.5)}),
    unary("Clip", opset=13),
], ids=lambda mb: "")
def test_activations(mb):
    check_against_onnxruntime(mb)


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div", "Max", "Min"])
@pytest.mark.parametrize("operand", ["tensor", "channel_const", "scalar_const", "lower_rank_tensor"])
def test_binary(op_type, operand):
    inputs, inits = dict(X4), {}
    if operand == "tensor":
        inputs["z"] = (2, 3, 6, 7)
    elif operand == "lower_rank_tensor":
        inputs["z"] = (6, 1)
    elif operand == "channel_const":
        inits["z"] = rand(3, 1, 1) + 3.0
    else:
        inits["z"] = np.float32(2.5)
    check_against_onnxruntime(model_bytes([node(op_type, ["x", "z"], ["y"])], inputs, ["y"], inits))


def test_constant_first_sub_and_variadic_ops():
    nodes = [node("Sub", ["c", "x"], ["a"]), node("Max", ["a", "x", "z"], ["m"]),
             node("Sum", ["m", "x", "z"], ["y"])]
    check_against_onnxruntime(model_bytes(nodes, {**X4, "z": (2, 3, 6, 7)}, ["y"], {"c": rand(1, 3, 1, 1)}))


def test_division_by_tensor_is_its_reciprocal_times_the_dividend():
    g = check_against_onnxruntime(model_bytes([node("Div", ["x", "z"], ["y"])], {**X4, "z": (2, 3, 6, 7)}, ["y"]))
    assert [n.attrs.fn for n in g.nodes if n.op is Op.UNARY] == ["reciprocal"]
    assert sum(n.op is Op.MUL for n in g.nodes) == 1 and not any(n.op is Op.HOST_FLOAT for n in g.nodes)


@pytest.mark.parametrize("op_type,attrs", [
    ("MaxPool", {"kernel_shape": [2, 2], "strides": [2, 2]}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("MaxPool", {"kernel_shape": [3, 2], "strides": [2, 2], "ceil_mode": 1}),
    ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1}),
    ("MaxPool", {"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1}),
    ("AveragePool", {"kernel_shape": [2, 2], "strides": [2, 2], "ceil_mode": 1, "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1,
                     "count_include_pad": 1}),
    ("AveragePool", {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 1, 1, 0], "ceil_mode": 1}),
    ("GlobalAveragePool", {}),
    ("GlobalMaxPool", {}),
])
def test_pools(op_type, attrs):
    check_against_onnxruntime(model_bytes([node(op_type, ["x"], ["y"], **attrs)], X4, ["y"], opset=13))


@pytest.mark.parametrize("nodes,inits", [
    ([node("Flatten", ["x"], ["y"], axis=2)], {}),
    ([node("Flatten", ["x"], ["y"])], {}),
    ([node("Reshape", ["x", "s"], ["y"])], {"s": np.array([0, -1, 7], np.int64)}),
    ([node("Reshape", ["x", "s"], ["y"])], {"s": np.array([2, 6, 3, 7], np.int64)}),
    ([node("Transpose", ["x"], ["y"], perm=[0, 3, 1, 2])], {}),
    ([node("Transpose", ["x"], ["y"])], {}),
    ([node("Unsqueeze", ["x", "a"], ["u"]), node("Squeeze", ["u", "a"], ["y"])], {"a": np.array([2], np.int64)}),
    ([node("Softmax", ["x"], ["y"], axis=1)], {}),
    ([node("Softmax", ["x"], ["y"])], {}),
    ([node("ReduceMean", ["x"], ["y"], axes=[2, 3])], {}),
    ([node("ReduceMean", ["x"], ["y"], axes=[2], keepdims=0)], {}),
    ([node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=1)], {}),
    ([node("Identity", ["x"], ["i"]), node("Dropout", ["i"], ["y"])], {}),
    ([node("Concat", ["x", "x"], ["y"], axis=1)], {}),
    ([node("Concat", ["x", "c"], ["y"], axis=-1)], {"c": RNG.standard_normal((2, 3, 6, 2)).astype(np.float32)}),
    ([node("Slice", ["x", "s", "e", "a", "st"], ["y"])],
     {"s": np.array([1, -1], np.int64), "e": np.array([3, -100], np.int64), "a": np.array([1, 3], np.int64),
      "st": np.array([1, -2], np.int64)}),
    ([node("Slice", ["x", "s", "e"], ["y"])], {"s": np.array([0, 0, 2], np.int64),
                                               "e": np.array([1, 9, 2 ** 62], np.int64)}),
    ([node("Pad", ["x", "p"], ["y"])], {"p": np.array([0, 0, 1, 2, 0, 1, 3, 0], np.int64)}),
    ([node("Pad", ["x", "p", "v"], ["y"], mode="constant")],
     {"p": np.array([0, 0, 0, 1, 0, 0, 2, 0], np.int64), "v": np.float32(-1.5)}),
], ids=lambda v: v[0].op_type if isinstance(v, list) else "")
def test_tensor_ops_opset13(nodes, inits):
    check_against_onnxruntime(model_bytes(nodes, X4, ["y"], inits))


@pytest.mark.parametrize("starts, ends, steps", [([0], [0], [1]), ([5], [2 ** 62], [1]), ([-1], [-9], [1]),
                                                 ([0], [2], [-1])])
def test_an_empty_slice_adds_nothing_to_a_concat(starts, ends, steps):
    """cat([x, x[:, :0]]) (RivaGAN's encoder): the empty piece is no activation, and the concat
    is of the other operands."""
    const = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64), "a": np.array([1], np.int64),
             "t": np.array(steps, np.int64)}
    nodes = [node("Slice", ["x", "s", "e", "a", "t"], ["empty"]), node("Relu", ["x"], ["r"]),
             node("Concat", ["r", "empty", "x"], ["y"], axis=1)]
    g = check_against_onnxruntime(model_bytes(nodes, {"x": (1, 3, 4, 6)}, ["y"], const))
    assert Op.SLICE not in ops(g) and Op.CONCAT in ops(g)


def test_split_into_slices():
    nodes = [node("Split", ["x", "sizes"], ["a", "b"], axis=1), node("Split", ["x"], ["c", "d"], axis=3)]
    g = check_against_onnxruntime(model_bytes(nodes, {"x": (1, 3, 4, 6)}, ["a", "b", "c", "d"],
                                              {"sizes": np.array([1, 2], np.int64)}))
    assert ops(g).count(Op.SLICE) == 4


def test_old_opset_forms():
    """Softmax-11 flattens from its axis; Split/Squeeze/ReduceMean take attributes before 13."""
    nodes = [node("Softmax", ["x"], ["s"], axis=1),
             node("Split", ["s"], ["a", "b"], axis=2, split=[2, 4]),
             node("ReduceMean", ["b"], ["m"], axes=[2, 3], keepdims=1),
             node("Squeeze", ["m"], ["y"], axes=[2, 3])]
    check_against_onnxruntime(model_bytes(nodes, X4, ["y", "a"], opset=11))


def resize_model(mode, coord, nearest_mode="round_prefer_floor", scales=(1, 1, 2, 2), sizes=None, opset=13):
    attrs = {"mode": mode, "coordinate_transformation_mode": coord}
    if mode == "nearest":
        attrs["nearest_mode"] = nearest_mode
    inits = {"roi": np.zeros(0, np.float32)}
    if sizes is None:
        inits["scales"] = np.array(scales, np.float32)
        ins = ["x", "roi", "scales"]
    else:
        inits["sizes"] = np.array(sizes, np.int64)
        ins = ["x", "roi", "", "sizes"]
    return model_bytes([node("Resize", ins, ["y"], **attrs)], {"x": (1, 2, 5, 6)}, ["y"], inits, opset)


@pytest.mark.parametrize("mb", [
    resize_model("nearest", "asymmetric", "floor"),
    resize_model("nearest", "half_pixel", "round_prefer_floor"),
    resize_model("nearest", "half_pixel", "round_prefer_ceil", scales=(1, 1, 3, 2)),
    resize_model("nearest", "align_corners", "round_prefer_ceil", sizes=(1, 2, 9, 11)),
    resize_model("nearest", "pytorch_half_pixel", "round_prefer_floor", scales=(1, 1, 0.5, 0.5)),
    resize_model("linear", "half_pixel"),
    resize_model("linear", "pytorch_half_pixel", scales=(1, 1, 3, 2)),
    resize_model("linear", "align_corners", sizes=(1, 2, 9, 13)),
    resize_model("linear", "asymmetric"),
    model_bytes([node("Upsample", ["x", "s"], ["y"], mode="nearest")], {"x": (1, 2, 3, 4)}, ["y"],
                {"s": np.array([1, 1, 2, 3], np.float32)}, opset=9),
], ids=lambda mb: "")
def test_resize(mb):
    check_against_onnxruntime(mb)


def test_if_on_a_shape_condition_is_inlined():
    then_graph = helper.make_graph([node("Relu", ["x"], ["t"])], "then", [],
                                   [helper.make_tensor_value_info("t", 1, None)])
    else_graph = helper.make_graph([node("Neg", ["x"], ["e"])], "else", [],
                                   [helper.make_tensor_value_info("e", 1, None)])
    nodes = [node("Shape", ["x"], ["s"]), node("Gather", ["s", "one"], ["c"], axis=0),
             node("Equal", ["c", "three"], ["cond"]),
             node("If", ["cond"], ["y"], then_branch=then_graph, else_branch=else_graph)]
    mb = model_bytes(nodes, X4, ["y"], {"one": np.array(1, np.int64), "three": np.array(3, np.int64)})
    g = check_against_onnxruntime(mb)
    assert Op.CLAMP in ops(g)


def test_opset18_axes_inputs():
    nodes = [node("ReduceMean", ["x", "axes"], ["m"], keepdims=0),
             node("Split", ["x"], ["a", "b", "c"], axis=3, num_outputs=3),
             node("Pad", ["a", "pads", "", "pad_axes"], ["y"])]
    inits = {"axes": np.array([1, 3], np.int64), "pads": np.array([1, 2, 0, 1], np.int64),
             "pad_axes": np.array([2, 3], np.int64)}
    check_against_onnxruntime(model_bytes(nodes, X4, ["y", "m", "b", "c"], inits, opset=18))


def test_keep_all_returns_every_intermediate():
    from npukit.frontend.onnx import load_onnx
    from npukit.kernels.float_exec import run_float
    from onnx_testutil import onnxruntime_outputs, random_feeds
    mb = model_bytes([node("Relu", ["x"], ["r"]), node("Softmax", ["r"], ["y"], axis=-1)], {"x": (3, 5)}, ["y"])
    feeds = random_feeds(mb)
    everything = run_float(load_onnx(mb), feeds, keep_all=True)
    assert set(everything) == {"x", "r", "y"}
    np.testing.assert_allclose(everything["r"], np.maximum(feeds["x"], 0))
    np.testing.assert_allclose(everything["y"], onnxruntime_outputs(mb, feeds)["y"], rtol=1e-5, atol=1e-6)


def test_unsqueeze_without_axes_is_a_model_error():
    from npukit.errors import ModelError
    from npukit.frontend.onnx import load_onnx
    mb = model_bytes([node("Unsqueeze", ["x"], ["y"])], {"x": (1, 2, 3, 4)}, ["y"])
    with pytest.raises(ModelError, match="Unsqueeze node .* no axes") as e:
        load_onnx(mb)
    assert "TypeError" not in str(e.value)


@pytest.mark.parametrize("elem", [TensorProto.DOUBLE, TensorProto.FLOAT16])
def test_a_double_or_half_input_is_a_float_input(tmp_path, elem):
    """A model declaring float64 (sklearn-onnx, the onnx wheel's operator exports) or float16
    inputs compiles as float; `run` takes float32 as for any float input, and agrees with
    onnxruntime fed the declared type."""
    import npukit
    np_type = helper.tensor_dtype_to_np_dtype(elem)
    scale = numpy_helper.from_array(np.array([0.5, -2.0, 1.5, 3.0], np_type), "s")
    g = helper.make_graph([helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Relu", ["m"], ["y"])], "dbl",
                          [helper.make_tensor_value_info("x", elem, [2, 4])],
                          [helper.make_tensor_value_info("y", elem, [2, 4])], [scale])
    path = tmp_path / "double.onnx"
    path.write_bytes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8).SerializeToString())
    calib = np.random.default_rng(5).uniform(-1, 1, (8, 2, 4)).astype(np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert prog.profile().host_ops == []
    want = ort.InferenceSession(str(path)).run(None, {"x": calib[0].astype(np_type)})[0]
    got = prog.run({"x": calib[0]})["y"]
    assert np.max(np.abs(got - want)) <= prog.program.outputs[0].scale

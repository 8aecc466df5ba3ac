"""Conv, ConvTranspose, Gemm, MatMul and BatchNormalization imports against onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from hypothesis import assume, given, settings, strategies as st
from onnx_testutil import check_against_onnxruntime, model_bytes, node, onnxruntime_outputs, ops

import npukit
from npukit.ir.graph import Clamp, Op

RNG = np.random.default_rng(7)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def conv_model(c_in, c_out, k, h=9, w=8, bias=True, opset=13, **attrs):
    groups = attrs.get("group", 1)
    inits = {"W": rand(c_out, c_in // groups, *k)}
    ins = ["x", "W"]
    if bias:
        inits["B"] = rand(c_out)
        ins.append("B")
    return model_bytes([node("Conv", ins, ["y"], **attrs)], {"x": (1, c_in, h, w)}, ["y"], inits, opset)


@pytest.mark.parametrize("attrs", [
    {"pads": [1, 0, 2, 1]},
    {"strides": [2, 1], "pads": [1, 2, 1, 2], "dilations": [1, 2]},
    {"group": 3},
])
@pytest.mark.parametrize("k", [(3, 3), (1, 1)])
def test_conv_beyond_one_im2col_runs_in_bands_of_rows(monkeypatch, attrs, k):
    """A conv whose float im2col exceeds the tensor limit runs band by band (a spectrogram
    model of 901 x 161 under 128 channels needs 167 M values): the limit is shrunk so that
    a small conv takes bands of one to three output rows."""
    from npukit.kernels import float_exec
    from npukit.limits import Limit
    rows_of_im2col = 3 * 8 * k[0] * k[1] * 6        # 3 output rows of 8 pixels at full depth: < 11 rows
    monkeypatch.setattr(float_exec, "TENSOR_ELEMENTS", Limit("max_tensor_elements", rows_of_im2col, "elements"))
    check_against_onnxruntime(conv_model(6, 9, k, h=11, w=8, **attrs))


@pytest.mark.parametrize("attrs", [
    {},
    {"strides": [2, 2]},
    {"pads": [1, 0, 2, 1]},
    {"dilations": [2, 3], "pads": [1, 1, 1, 1]},
    {"strides": [2, 1], "pads": [1, 2, 1, 2], "dilations": [1, 2]},
    {"auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"auto_pad": "SAME_LOWER", "strides": [2, 2]},
    {"auto_pad": "VALID"},
])
def test_conv_geometry(attrs):
    check_against_onnxruntime(conv_model(3, 5, (3, 3), **attrs))


def test_conv_without_bias_and_rectangular_kernel():
    check_against_onnxruntime(conv_model(4, 6, (1, 3), bias=False, pads=[0, 1, 0, 1]))


def test_grouped_conv():
    g = check_against_onnxruntime(conv_model(4, 6, (3, 3), group=2, pads=[1, 1, 1, 1]))
    conv = next(n for n in g.nodes if n.op is Op.CONV2D)
    assert conv.attrs.groups == 2 and not conv.attrs.depthwise
    assert g.tensors[conv.inputs[1]].shape == (6, 3, 3, 2)


@pytest.mark.parametrize("mult", [1, 2])
def test_depthwise_conv(mult):
    g = check_against_onnxruntime(conv_model(4, 4 * mult, (3, 3), group=4, strides=[2, 2], pads=[1, 1, 1, 1]))
    conv = next(n for n in g.nodes if n.op is Op.CONV2D)
    assert conv.attrs.depthwise
    assert g.tensors[conv.inputs[1]].shape == (1, 3, 3, 4 * mult)


def test_conv1d():
    mb = model_bytes([node("Conv", ["x", "W", "B"], ["y"], pads=[1, 2], strides=[2], dilations=[2])],
                     {"x": (1, 3, 20)}, ["y"], {"W": rand(4, 3, 3), "B": rand(4)})
    check_against_onnxruntime(mb)


@settings(max_examples=25, deadline=None)
@given(c_per_group=st.integers(1, 3), groups=st.sampled_from([1, 2, 3]), out_per_group=st.integers(1, 3),
       kh=st.integers(1, 4), kw=st.integers(1, 4), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), pads=st.tuples(*[st.integers(0, 2)] * 4),
       h=st.integers(6, 11), w=st.integers(6, 11), seed=st.integers(0, 1000))
def test_conv_hyperparameters(c_per_group, groups, out_per_group, kh, kw, stride, dilation, pads, h, w, seed):
    # a dilated 4-tap kernel spans 7 rows: the padded input must hold one window (else no model)
    assume(h + pads[0] + pads[2] >= (kh - 1) * dilation[0] + 1 and w + pads[1] + pads[3] >= (kw - 1) * dilation[1] + 1)
    c_in, c_out = c_per_group * groups, out_per_group * groups
    rng = np.random.default_rng(seed)
    mb = model_bytes([node("Conv", ["x", "W", "B"], ["y"], group=groups, strides=list(stride),
                           dilations=list(dilation), pads=list(pads))],
                     {"x": (1, c_in, h, w)}, ["y"],
                     {"W": rng.standard_normal((c_out, c_per_group, kh, kw)).astype(np.float32),
                      "B": rng.standard_normal(c_out).astype(np.float32)})
    check_against_onnxruntime(mb)


def conv_transpose_model(c_in, c_out, k, groups=1, h=5, w=6, **attrs):
    inits = {"W": rand(c_in, c_out // groups, *k), "B": rand(c_out)}
    return model_bytes([node("ConvTranspose", ["x", "W", "B"], ["y"], group=groups, **attrs)],
                       {"x": (1, c_in, h, w)}, ["y"], inits)


@pytest.mark.parametrize("attrs", [
    {"strides": [2, 2]},
    {"strides": [2, 2], "output_padding": [1, 1]},
    {"strides": [2, 2], "pads": [1, 1, 1, 1], "output_padding": [1, 0]},
    {"strides": [3, 2], "pads": [0, 1, 2, 0], "dilations": [2, 1]},
    {"strides": [2, 2], "output_shape": [11, 12]},
    {"strides": [2, 2], "auto_pad": "SAME_UPPER"},
])
def test_conv_transpose(attrs):
    g = check_against_onnxruntime(conv_transpose_model(3, 4, (3, 3), **attrs))
    conv = next(n for n in g.nodes if n.op is Op.CONV2D)
    assert conv.attrs.input_dilation == tuple(attrs["strides"])


@pytest.mark.parametrize("groups,c_out", [(2, 4), (4, 4)])
def test_grouped_and_depthwise_conv_transpose(groups, c_out):
    check_against_onnxruntime(conv_transpose_model(4, c_out, (4, 4), groups=groups, strides=[2, 2],
                                                   pads=[1, 1, 1, 1]))


def test_conv_bn_relu_block_folds_to_one_conv():
    c = 6
    inits = {"W": rand(c, 3, 3, 3), "gamma": rand(c), "beta": rand(c), "mean": rand(c),
             "var": np.abs(rand(c)) + 0.5}
    mb = model_bytes([node("Conv", ["x", "W"], ["c"], pads=[1, 1, 1, 1]),
                      node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
                      node("Relu", ["bn"], ["y"])], {"x": (1, 3, 8, 8)}, ["y"], inits)
    g = check_against_onnxruntime(mb)
    assert ops(g) == [Op.TRANSPOSE, Op.CONV2D, Op.TRANSPOSE]
    conv = g.nodes[1]
    assert conv.attrs.act == Clamp(0.0, None)
    assert len(conv.source) == 3


def test_standalone_batch_norm_is_scale_and_shift():
    c = 3
    inits = {"gamma": rand(c), "beta": rand(c), "mean": rand(c), "var": np.abs(rand(c)) + 0.5}
    mb = model_bytes([node("BatchNormalization", ["x", "gamma", "beta", "mean", "var"], ["y"])],
                     {"x": (2, c, 4, 5)}, ["y"], inits)
    g = check_against_onnxruntime(mb)
    assert Op.MUL in ops(g) and Op.ADD in ops(g)


@pytest.mark.parametrize("attrs,c_shape", [
    ({}, (5,)),
    ({"transB": 1}, (1, 5)),
    ({"transA": 1, "alpha": 0.5, "beta": 2.0}, ()),
    ({"alpha": 1.5}, None),
])
def test_gemm(attrs, c_shape):
    a_shape = (4, 2) if attrs.get("transA") else (2, 4)
    b = rand(5, 4) if attrs.get("transB") else rand(4, 5)
    inits = {"B": b}
    ins = ["a", "B"]
    if c_shape is not None:
        inits["C"] = rand(*c_shape)
        ins.append("C")
    mb = model_bytes([node("Gemm", ins, ["y"], **attrs)], {"a": a_shape}, ["y"], inits)
    check_against_onnxruntime(mb)


def test_matmul_add_becomes_one_fully_connected():
    mb = model_bytes([node("MatMul", ["x", "W"], ["m"]), node("Add", ["m", "b"], ["y"])],
                     {"x": (3, 2, 6)}, ["y"], {"W": rand(6, 4), "b": rand(4)})
    g = check_against_onnxruntime(mb)
    assert ops(g) == [Op.FULLY_CONNECTED]


def test_flatten_gemm_head_needs_no_transpose():
    mb = model_bytes([node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
                      node("Relu", ["c"], ["r"]),
                      node("Flatten", ["r"], ["f"]),
                      node("Gemm", ["f", "FW", "FB"], ["y"], transB=1)],
                     {"x": (1, 3, 5, 4)}, ["y"],
                     {"W": rand(6, 3, 3, 3), "B": rand(6), "FW": rand(10, 6 * 5 * 4), "FB": rand(10)})
    g = check_against_onnxruntime(mb)
    assert ops(g) == [Op.TRANSPOSE, Op.CONV2D, Op.RESHAPE, Op.FULLY_CONNECTED]


def test_reshape_head_with_shape_subgraph():
    """x.view(x.size(0), -1) as PyTorch exports it: Shape -> Gather -> Unsqueeze -> Concat -> Reshape."""
    nodes = [node("GlobalAveragePool", ["x"], ["p"]),
             node("Shape", ["p"], ["s"]),
             node("Gather", ["s", "zero"], ["n"], axis=0),
             node("Unsqueeze", ["n", "axes0"], ["n1"]),
             node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             node("Reshape", ["p", "shape"], ["f"]),
             node("Gemm", ["f", "FW", "FB"], ["y"], transB=1)]
    inits = {"zero": np.array(0, np.int64), "axes0": np.array([0], np.int64),
             "minus1": np.array([-1], np.int64), "FW": rand(7, 8), "FB": rand(7)}
    mb = model_bytes(nodes, {"x": (2, 8, 5, 5)}, ["y"], inits)
    g = check_against_onnxruntime(mb)
    assert ops(g) == [Op.TRANSPOSE, Op.MEAN, Op.RESHAPE, Op.FULLY_CONNECTED]


@settings(max_examples=15, deadline=None)
@given(c_in=st.integers(1, 4), c_out=st.integers(1, 4), k=st.integers(1, 4), stride=st.integers(1, 3),
       pad=st.integers(0, 1), out_pad=st.integers(0, 2), seed=st.integers(0, 1000))
def test_conv_transpose_hyperparameters(c_in, c_out, k, stride, pad, out_pad, seed):
    out_pad = min(out_pad, stride - 1)
    pad = min(pad, k - 1)
    rng = np.random.default_rng(seed)
    mb = model_bytes([node("ConvTranspose", ["x", "W", "B"], ["y"], strides=[stride, stride],
                           pads=[pad] * 4, output_padding=[out_pad, 0])],
                     {"x": (1, c_in, 4, 5)}, ["y"],
                     {"W": rng.standard_normal((c_in, c_out, k, k)).astype(np.float32),
                      "B": rng.standard_normal(c_out).astype(np.float32)})
    check_against_onnxruntime(mb)


def test_tf2onnx_style_nhwc_model_loses_its_transposes():
    """tf2onnx wraps NHWC graphs in Transposes and pads explicitly; both disappear."""
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 3, 1, 2]),
             node("Pad", ["t", "p"], ["tp"]),
             node("Conv", ["tp", "W", "B"], ["c"], strides=[2, 2]),
             node("Relu", ["c"], ["r"]),
             node("Transpose", ["r"], ["y"], perm=[0, 2, 3, 1])]
    inits = {"p": np.array([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "W": rand(4, 3, 3, 3), "B": rand(4)}
    g = check_against_onnxruntime(model_bytes(nodes, {"x": (1, 8, 8, 3)}, ["y"], inits))
    assert ops(g) == [Op.CONV2D]
    assert g.nodes[0].attrs.pads == (0, 0, 1, 1) and g.nodes[0].attrs.act == Clamp(0.0, None)


def test_shape_subgraph_with_generic_constant_folding():
    """Range, ConstantOfShape, Equal, Where, Cast and Slice on shapes fold away before import."""
    nodes = [node("Shape", ["x"], ["s"]),
             node("Range", ["zero", "one", "one"], ["idx"]),
             node("Gather", ["s", "idx"], ["n"]),
             node("ConstantOfShape", ["one_vec"], ["ones"], value=helper.make_tensor("v", 7, [1], [1])),
             node("Equal", ["ones", "one"], ["is_one"]),
             node("Where", ["is_one", "minus1", "five"], ["rest"]),
             node("Cast", ["rest"], ["rest64"], to=7),
             node("Concat", ["n", "rest64"], ["shape"], axis=0),
             node("Reshape", ["x", "shape"], ["f"]),
             node("MatMul", ["f", "W"], ["y"])]
    one = np.array(1, np.int64)
    inits = {"zero": np.array(0, np.int64), "one": one, "one_vec": np.array([1], np.int64),
             "minus1": np.array([-1], np.int64), "five": np.array([5], np.int64), "W": rand(2 * 3 * 4, 6)}
    g = check_against_onnxruntime(model_bytes(nodes, {"x": (2, 2, 3, 4)}, ["y"], inits))
    assert ops(g) == [Op.RESHAPE, Op.FULLY_CONNECTED]


def test_gemm_with_activation_bias():
    mb = model_bytes([node("Gemm", ["a", "B", "c"], ["y"], transB=1)], {"a": (3, 4), "c": (3, 5)}, ["y"],
                     {"B": rand(5, 4)})
    check_against_onnxruntime(mb)


@pytest.mark.parametrize("attrs,c", [({}, None), ({"transB": 1, "alpha": 0.5}, "const"),
                                     ({"transA": 1, "beta": 2.0}, "const"), ({"transB": 1}, "input")])
def test_gemm_of_two_activations(attrs, c, tmp_path):
    """Gemm whose B is an activation (PyTorch's addmm of two inputs): a MATMUL on the NPU, then
    alpha and C; imported exactly, and compiled within int8 steps of onnxruntime."""
    a_shape = (6, 5) if attrs.get("transA") else (5, 6)
    b_shape = (4, 6) if attrs.get("transB") else (6, 4)
    inputs = {"a": a_shape, "b": b_shape} | ({"c": (5, 4)} if c == "input" else {})
    inits = {"c": rand(1, 4)} if c == "const" else {}
    mb = model_bytes([node("Gemm", ["a", "b", *(["c"] if c else [])], ["y"], **attrs)], inputs, ["y"], inits)
    g = check_against_onnxruntime(mb)
    assert Op.MATMUL in ops(g)
    path = tmp_path / "gemm.onnx"
    path.write_bytes(mb)
    rng = np.random.default_rng(2)
    calib = {k: rng.uniform(-1, 1, (8, *s)).astype(np.float32) for k, s in inputs.items()}
    model = npukit.compile(path, "npu-m", calibration=calib, sqnr=False)
    assert not model.profile().host_ops
    step = float(model.program.outputs[0].scale)
    feed = {k: v[0] for k, v in calib.items()}
    assert np.abs(model.run(feed)["y"] - onnxruntime_outputs(mb, feed)["y"]).max() <= 3 * step


@pytest.mark.parametrize("op, attrs", [("Conv", {"pads": [2, 2]}), ("Conv", {"auto_pad": "SAME_UPPER"}),
                                       ("Conv", {"strides": [2], "auto_pad": "SAME_UPPER"}),
                                       ("ConvTranspose", {}), ("ConvTranspose", {"strides": [2], "auto_pad": "SAME_UPPER"})])
def test_1d_conv_with_default_strides_and_dilations(op, attrs):
    """A 1-D Conv / ConvTranspose that leaves out `strides` and `dilations` (their defaults of
    the spec, not written by every exporter) imports, as onnxruntime computes it."""
    w = np.random.default_rng(0).standard_normal((4, 4, 5) if op == "Conv" else (4, 3, 4)).astype(np.float32)
    mb = model_bytes([node(op, ["x", "w"], ["y"], **attrs)], {"x": (1, 4, 12)}, ["y"], {"w": w})
    check_against_onnxruntime(mb)


@pytest.mark.parametrize("k, strides, out_pad, pads", [((1, 3), (1, 2), (0, 1), (0, 1, 0, 1)),
                                                       ((3, 3), (2, 2), (1, 1), (1, 1, 1, 1))])
def test_depthwise_conv_transpose_compiled(k, strides, out_pad, pads, tmp_path):
    """A depthwise ConvTranspose (DeepFilterNet's decoder upsampling: group = channels) runs on
    the NPU as a grouped conv over the dilated input, the simulator equal to the integer
    reference and within about an output step of onnxruntime (it ran a depthwise conv that
    ignored the input dilation: 120-200 steps off)."""
    from npukit.sim.reference import run_reference
    c, rng = 8, np.random.default_rng(3)
    w = rng.standard_normal((c, 1, *k)).astype(np.float32)
    mb = model_bytes([node("ConvTranspose", ["x", "w"], ["y"], group=c, kernel_shape=list(k), strides=list(strides),
                           output_padding=list(out_pad), pads=list(pads))], {"x": (1, c, 4, 8)}, ["y"], {"w": w})
    path = tmp_path / "dw_t.onnx"
    path.write_bytes(mb)
    xs = rng.uniform(-1, 1, (8, 1, c, 4, 8)).astype(np.float32)
    prog = npukit.compile(path, "npu-m", calibration={"x": xs}, sqnr=False)
    assert not prog.profile().host_ops
    ints = prog._ints({"x": xs[1]})
    np.testing.assert_array_equal(prog.run_int(ints)["y"], run_reference(prog.qgraph, ints)["y"])
    want = onnxruntime_outputs(mb, {"x": xs[1]})["y"]
    assert np.abs(prog.run({"x": xs[1]})["y"] - want).max() <= 1.5 * prog.program.outputs[0].scale

"""Optimisation passes: the rewritten graphs have the expected form and still match onnxruntime."""
from __future__ import annotations

import numpy as np
import pytest
from opt_testutil import check_against_onnxruntime, model_bytes, node, ops

from npukit.errors import ModelError
from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Clamp, Node, Op, ReshapeAttrs
from npukit.opt import pipeline

RNG = np.random.default_rng(11)
X = {"x": (1, 4, 6, 6)}


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def scalars(**values):
    return {k: np.array(v, np.float32) for k, v in values.items()}


HARD_SWISH_FORMS = {
    # x * clip(x + 3, 0, 6) / 6
    "clip_then_div": ([node("Add", ["x", "three"], ["a"]), node("Clip", ["a", "zero", "six"], ["c"]),
                       node("Mul", ["x", "c"], ["m"]), node("Div", ["m", "six"], ["y"])],
                      scalars(three=3, zero=0, six=6)),
    # x * relu6(x + 3) / 6 with relu6 as Relu + Min
    "relu_min": ([node("Add", ["x", "three"], ["a"]), node("Relu", ["a"], ["r"]),
                  node("Min", ["r", "six"], ["c"]), node("Div", ["c", "six"], ["d"]),
                  node("Mul", ["d", "x"], ["y"])], scalars(three=3, six=6)),
    # x * HardSigmoid(x) (PyTorch's alpha = 1/6 as float32)
    "hard_sigmoid": ([node("HardSigmoid", ["x"], ["h"], alpha=1 / 6), node("Mul", ["x", "h"], ["y"])], {}),
}


@pytest.mark.parametrize("form", sorted(HARD_SWISH_FORMS))
def test_decomposed_hard_swish_becomes_one_op(form):
    nodes, inits = HARD_SWISH_FORMS[form]
    nodes = [node("Conv", ["in", "W", "B"], ["x"], pads=[1, 1, 1, 1])] + nodes
    g = check_against_onnxruntime(model_bytes(nodes, {"in": (1, 3, 6, 6)}, ["y"],
                                              {**inits, "W": rand(4, 3, 3, 3), "B": rand(4)}))
    assert ops(g) == [Op.TRANSPOSE, Op.CONV2D, Op.HARD_SWISH, Op.TRANSPOSE]


def test_non_hard_swish_lookalike_is_left_alone():
    nodes, inits = HARD_SWISH_FORMS["clip_then_div"]
    inits = {**inits, "three": np.array(2.0, np.float32)}          # x * relu6(x + 2) / 6
    g = check_against_onnxruntime(model_bytes(nodes, X, ["y"], inits))
    assert Op.HARD_SWISH not in ops(g)


def test_activation_fused_only_when_sole_consumer():
    inits = {"W": rand(4, 4, 3, 3), "B": rand(4), "lo": np.float32(0), "hi": np.float32(6)}
    fused = [node("Conv", ["x", "W", "B"], ["c"], pads=[1, 1, 1, 1]), node("Clip", ["c", "lo", "hi"], ["y"])]
    g = check_against_onnxruntime(model_bytes(fused, X, ["y"], inits))
    conv = next(n for n in g.nodes if n.op is Op.CONV2D)
    assert conv.attrs.act == Clamp(0.0, 6.0) and Op.CLAMP not in ops(g)
    shared = fused + [node("Add", ["c", "y"], ["z"])]
    g = check_against_onnxruntime(model_bytes(shared, X, ["z"], inits))
    assert Op.CLAMP in ops(g)


@pytest.mark.parametrize("producer,op", [
    (node("Add", ["x", "x2"], ["a"]), Op.ADD),
    (node("Sub", ["x", "x2"], ["a"]), Op.SUB),
    (node("Mul", ["x", "x2"], ["a"]), Op.MUL),
    (node("AveragePool", ["x"], ["a"], kernel_shape=[2, 2], pads=[1, 1, 0, 0]), Op.AVG_POOL),
    (node("MaxPool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2]), Op.MAX_POOL),
])
def test_clamp_after_eltwise_and_pool_is_fused(producer, op):
    inits = {"lo": np.float32(-0.5), "hi": np.float32(0.75)}
    mb = model_bytes([producer, node("Clip", ["a", "lo", "hi"], ["y"])], {**X, "x2": (1, 4, 6, 6)}, ["y"], inits)
    g = check_against_onnxruntime(mb)
    fused = next(n for n in g.nodes if n.op is op)
    assert fused.attrs.act == Clamp(-0.5, 0.75) and Op.CLAMP not in ops(g)


def test_cancelling_transposes_vanish():
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]), node("Relu", ["t"], ["r"]),
             node("Transpose", ["r"], ["y"], perm=[0, 3, 1, 2])]
    g = check_against_onnxruntime(model_bytes(nodes, X, ["y"]))
    # only the input and output layout changes remain, and they cancel around the relu
    assert ops(g).count(Op.TRANSPOSE) <= 2 and Op.CLAMP in ops(g)
    nodes = [node("Transpose", ["x"], ["t"], perm=[0, 2, 3, 1]), node("Transpose", ["t"], ["y"], perm=[0, 3, 1, 2])]
    g = load_onnx(model_bytes(nodes, X, ["y"]))
    assert len(pipeline.optimize(g).nodes) <= 1


def test_transpose_of_unit_dims_becomes_reshape():
    nodes = [node("GlobalAveragePool", ["x"], ["p"]), node("Transpose", ["p"], ["y"], perm=[0, 2, 1, 3])]
    g = check_against_onnxruntime(model_bytes(nodes, X, ["y"]))
    assert ops(g) == [Op.TRANSPOSE, Op.MEAN, Op.RESHAPE]


def test_zero_pad_folds_into_conv_padding():
    nodes = [node("Pad", ["x", "p"], ["xp"]), node("Conv", ["xp", "W", "B"], ["y"], strides=[2, 2])]
    inits = {"p": np.array([0, 0, 1, 0, 0, 0, 2, 1], np.int64), "W": rand(5, 4, 3, 3), "B": rand(5)}
    g = check_against_onnxruntime(model_bytes(nodes, X, ["y"], inits))
    conv = next(n for n in g.nodes if n.op is Op.CONV2D)
    assert Op.PAD not in ops(g) and conv.attrs.pads == (1, 0, 2, 1)


def test_depthwise_conv_bn_folds():
    c = 4
    inits = {"W": rand(c, 1, 3, 3), "gamma": rand(c), "beta": rand(c), "mean": rand(c), "var": np.abs(rand(c)) + 1}
    nodes = [node("Conv", ["x", "W"], ["c"], group=c, pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["y"])]
    g = check_against_onnxruntime(model_bytes(nodes, X, ["y"], inits))
    assert ops(g) == [Op.TRANSPOSE, Op.CONV2D, Op.TRANSPOSE]


def test_optimize_verifies_after_every_pass(monkeypatch):
    def broken(g):      # a pass that produces a wrong shape
        bad = Node(Op.RESHAPE, "bad", (g.outputs[0],), ("z",), ReshapeAttrs((3, 3)))
        return g.with_nodes(list(g.nodes) + [bad])
    monkeypatch.setattr(pipeline, "PASSES", (("broken_pass", broken),))
    g = load_onnx(model_bytes([node("Relu", ["x"], ["y"])], X, ["y"]))
    with pytest.raises(ModelError, match="after broken_pass"):
        pipeline.optimize(g)


def test_printer_shows_ops_shapes_attrs_and_sources():
    from npukit.ir.printer import format_graph
    inits = {"W": rand(5, 4, 3, 3), "B": rand(5)}
    nodes = [node("Conv", ["x", "W", "B"], ["c"], strides=[2, 2]), node("Relu", ["c"], ["y"])]
    mb = model_bytes(nodes, X, ["y"], inits)
    text = format_graph(pipeline.optimize(load_onnx(mb)))
    conv_line = next(line for line in text.splitlines() if "conv2d(" in line)
    assert "float32[1x2x2x5]" in conv_line and "stride=(2, 2)" in conv_line
    assert "act=Clamp(lo=0.0, hi=None)" in conv_line and "Conv_c, Relu_y" in conv_line
    assert text.splitlines()[0].startswith("graph test (%x:float32[1x4x6x6])")

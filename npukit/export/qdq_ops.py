"""One emitter per IR operator: the float ONNX operator(s) between the QDQ pairs of its
operands and of its output. Each takes the writer and the node, and records the output."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import Clamp, Node, Op
from .qdq import QdqWriter, identity

NCHW = (0, 3, 1, 2)       # ONNX value = NHWC IR value transposed by this


def _out(w: QdqWriter, node: Node, float_name: str, perm: tuple[int, ...]) -> None:
    w.quantize(float_name, node.outputs[0], perm)


def _act(w: QdqWriter, x: str, act: Clamp | None, base: str) -> str:
    """A fused activation as a float Relu / Clip before the output's QuantizeLinear."""
    if act is None or (act.lo is None and act.hi is None):
        return x
    if act.lo == 0.0 and act.hi is None:
        return w.node("Relu", [x], base=base)
    lo = w.init(np.float32(act.lo if act.lo is not None else -np.finfo(np.float32).max), base + "/min")
    hi = w.init(np.float32(act.hi if act.hi is not None else np.finfo(np.float32).max), base + "/max")
    return w.node("Clip", [x, lo, hi], base=base)


def _spatial(w: QdqWriter, node: Node) -> str:
    """The input in NCHW (4-D)."""
    if len(w.g.tensors[node.inputs[0]].shape) != 4:
        raise UnsupportedOpError(f"{node.name}: {node.op.value} of a non-4-D tensor")
    return w.value(node.inputs[0], NCHW).f


def conv(w: QdqWriter, node: Node) -> None:
    a = node.attrs
    if a.input_dilation != (1, 1):
        raise UnsupportedOpError(f"{node.name}: exporting a transposed convolution to QDQ ONNX is not supported")
    x = _spatial(w, node)
    wt = (3, 0, 1, 2) if a.depthwise else NCHW        # [1,kh,kw,C] -> [C,1,kh,kw]; OHWI -> OIHW
    weight = w.constant(node.inputs[1], wt).f
    groups = w.g.tensors[node.inputs[1]].shape[3] if a.depthwise else a.groups
    ins = [x, weight] + ([w.constant(node.inputs[2], (0,)).f] if len(node.inputs) > 2 else [])
    t, l, b, r = a.pads
    y = w.node("Conv", ins, base=node.name, strides=list(a.stride), dilations=list(a.dilation),
               pads=[t, l, b, r], group=int(groups), kernel_shape=list(w.g.tensors[node.inputs[1]].shape[1:3]))
    _out(w, node, _act(w, y, a.act, node.name), NCHW)


def fully_connected(w: QdqWriter, node: Node) -> None:
    xt = w.g.tensors[node.inputs[0]]
    x = w.value(node.inputs[0], identity(len(xt.shape))).f
    weight = w.constant(node.inputs[1], (0, 1)).f
    has_bias = len(node.inputs) > 2
    if len(xt.shape) == 2:
        bias = [w.constant(node.inputs[2], (0,)).f] if has_bias else []
        y = w.node("Gemm", [x, weight] + bias, base=node.name, transB=1)
    else:
        y = w.node("MatMul", [x, w.node("Transpose", [weight], base=node.name, perm=[1, 0])], base=node.name)
        if has_bias:
            y = w.node("Add", [y, w.constant(node.inputs[2], (0,)).f], base=node.name)
    _out(w, node, _act(w, y, node.attrs.act, node.name), identity(len(w.g.tensors[node.outputs[0]].shape)))


def _common_perm(w: QdqWriter, node: Node) -> tuple[int, ...]:
    """The layout for an element-wise node: its first activation's, when every operand has its rank."""
    rank = len(w.g.tensors[node.outputs[0]].shape)
    acts = [t for t in node.inputs if t in w.values]
    same_rank = all(len(w.g.tensors[t].shape) == rank for t in node.inputs)
    return w.value(acts[0]).perm if acts and same_rank else identity(rank)


_BINARY = {Op.ADD: "Add", Op.SUB: "Sub", Op.MUL: "Mul", Op.MAXIMUM: "Max", Op.MINIMUM: "Min"}


def binary(w: QdqWriter, node: Node) -> None:
    perm = _common_perm(w, node)
    ins = [w.value(t, perm if len(w.g.tensors[t].shape) == len(perm) else None).f for t in node.inputs]
    y = w.node(_BINARY[node.op], ins, base=node.name)
    _out(w, node, _act(w, y, getattr(node.attrs, "act", None), node.name), perm)


def pool(w: QdqWriter, node: Node) -> None:
    a = node.attrs
    kw: dict[str, Any] = {"kernel_shape": list(a.kernel), "strides": list(a.stride), "pads": list(a.pads)}
    if node.op is Op.AVG_POOL:
        kw["count_include_pad"] = int(a.count_include_pad)
    y = w.node("MaxPool" if node.op is Op.MAX_POOL else "AveragePool", [_spatial(w, node)], base=node.name, **kw)
    _out(w, node, _act(w, y, a.act, node.name), NCHW)


_REDUCE = {Op.MEAN: "ReduceMean", Op.REDUCE_SUM: "ReduceSum", Op.REDUCE_MAX: "ReduceMax", Op.REDUCE_MIN: "ReduceMin"}


def mean(w: QdqWriter, node: Node) -> None:
    v = w.value(node.inputs[0])
    axes = [v.perm.index(a) for a in node.attrs.axes]
    y = w.node(_REDUCE[node.op], [v.f, w.ints(axes, node.name + "/axes")], base=node.name,
               keepdims=int(node.attrs.keepdims))
    if node.attrs.keepdims:
        perm = v.perm
    else:       # the remaining IR axes, renumbered, in the order they are stored
        kept = sorted(set(range(len(v.perm))) - set(node.attrs.axes))
        perm = tuple(kept.index(p) for p in v.perm if p in kept)
    _out(w, node, y, perm)


def _unary_op(w: QdqWriter, node: Node, op: str, **attrs) -> None:
    v = w.value(node.inputs[0])
    _out(w, node, w.node(op, [v.f], base=node.name, **attrs), v.perm)


def unary(w: QdqWriter, node: Node) -> None:
    """An element-wise function as its ONNX operator (TFLite's RSQRT and code negation have none)."""
    from ..frontend.onnx_ops_eltwise import UNARY_FUNCTIONS
    names = {fn: name for name, fn in UNARY_FUNCTIONS.items()}
    a = node.attrs
    if a.fn not in names:
        raise UnsupportedOpError(f"{node.name}: exporting the element-wise function {a.fn} to QDQ ONNX is not supported")
    attrs = {k: float(v) for k, v in (("alpha", a.alpha), ("gamma", a.gamma)) if v is not None}
    _unary_op(w, node, names[a.fn], **attrs)


def clamp(w: QdqWriter, node: Node) -> None:
    v = w.value(node.inputs[0])
    _out(w, node, _act(w, v.f, node.attrs, node.name), v.perm)


def prelu(w: QdqWriter, node: Node) -> None:
    v = w.value(node.inputs[0])
    same = len(w.g.tensors[node.inputs[1]].shape) == len(v.perm)
    slope = w.value(node.inputs[1], v.perm if same else None).f
    _out(w, node, w.node("PRelu", [v.f, slope], base=node.name), v.perm)


def softmax(w: QdqWriter, node: Node) -> None:
    v = w.value(node.inputs[0])
    axis = node.attrs.axis % len(v.perm)
    _out(w, node, w.node("Softmax", [v.f], base=node.name, axis=v.perm.index(axis)), v.perm)


def concat(w: QdqWriter, node: Node) -> None:
    perm = w.value(node.inputs[0]).perm
    ins = [w.value(t, perm).f for t in node.inputs]
    axis = node.attrs.axis % len(perm)
    _out(w, node, w.node("Concat", ins, base=node.name, axis=perm.index(axis)), perm)


def slice_(w: QdqWriter, node: Node) -> None:
    v = w.value(node.inputs[0])
    a = node.attrs
    order = list(v.perm)
    starts = [a.begin[p] for p in order]
    ends = [a.end[p] for p in order]
    steps = [a.step[p] for p in order]
    y = w.node("Slice", [v.f, w.ints(starts, node.name + "/starts"), w.ints(ends, node.name + "/ends"),
                         w.ints(list(range(len(order))), node.name + "/axes"), w.ints(steps, node.name + "/steps")],
               base=node.name)
    _out(w, node, y, v.perm)


def pad(w: QdqWriter, node: Node) -> None:
    v = w.value(node.inputs[0])
    pads = [node.attrs.pads[p][0] for p in v.perm] + [node.attrs.pads[p][1] for p in v.perm]
    value = w.init(np.float32(node.attrs.value), node.name + "/value")
    _out(w, node, w.node("Pad", [v.f, w.ints(pads, node.name + "/pads"), value], base=node.name,
                         mode=node.attrs.mode), v.perm)


def reshape(w: QdqWriter, node: Node) -> None:
    x = w.value(node.inputs[0], identity(len(w.g.tensors[node.inputs[0]].shape)))
    shape = w.g.tensors[node.outputs[0]].shape
    q = w.node("Reshape", [x.q, w.ints(shape, node.name + "/shape")], base=node.name)
    _same_quant(w, node, q, identity(len(shape)))


def transpose(w: QdqWriter, node: Node) -> None:
    """No ONNX node: the output is the input's tensor in a layout that says so."""
    v = w.value(node.inputs[0])
    p = node.attrs.perm
    _same_quant(w, node, v.q, tuple(p.index(i) for i in v.perm), v.f)


def _same_quant(w: QdqWriter, node: Node, q: str, perm: tuple[int, ...], f: str | None = None) -> None:
    """Data movement on the int8 tensor itself: the output keeps its input's quantisation."""
    src, out = w.g.tensors[node.inputs[0]], w.g.tensors[node.outputs[0]]
    if src.quant != out.quant or src.dtype is not out.dtype:
        deq = f or w.node("DequantizeLinear", [q, *w.qparams_inits(src.qp, src.dtype, node.name)], base=node.name)
        w.quantize(deq, node.outputs[0], perm)
        return
    from .qdq import Value
    if f is None:
        f = w.node("DequantizeLinear", [q, *w.qparams_inits(out.qp, out.dtype, node.outputs[0])],
                   base=node.outputs[0])
    w.record(node.outputs[0], Value(q, f, perm))


def resize(w: QdqWriter, node: Node) -> None:
    a = node.attrs
    x = _spatial(w, node)
    n, _, _, c = w.g.tensors[node.outputs[0]].shape
    sizes = w.ints([n, c, a.size[0], a.size[1]], node.name + "/sizes")
    if a.align_corners:
        mode = "align_corners"
    elif a.half_pixel_centers:
        mode = "half_pixel" if a.mode == "bilinear" else "tf_half_pixel_for_nn"
    else:
        mode = "asymmetric"
    kw = {"mode": "linear" if a.mode == "bilinear" else "nearest", "coordinate_transformation_mode": mode}
    if a.mode != "bilinear":
        kw["nearest_mode"] = "round_prefer_ceil" if a.align_corners else "floor"
    _out(w, node, w.node("Resize", [x, "", "", sizes], base=node.name, **kw), NCHW)


def quantize(w: QdqWriter, node: Node) -> None:
    """int -> int requantisation: the input's dequantised value, quantised again."""
    v = w.value(node.inputs[0])
    _out(w, node, v.f, v.perm)


def matmul(w: QdqWriter, node: Node) -> None:
    a, b = (w.value(t, identity(len(w.g.tensors[t].shape))) for t in node.inputs[:2])
    bf = b.f
    if node.attrs.transpose_b:
        rank = len(w.g.tensors[node.inputs[1]].shape)
        bf = w.node("Transpose", [bf], base=node.name, perm=list(range(rank - 2)) + [rank - 1, rank - 2])
    _out(w, node, w.node("MatMul", [a.f, bf], base=node.name), identity(len(w.g.tensors[node.outputs[0]].shape)))


EMITTERS = {
    Op.CONV2D: conv, Op.FULLY_CONNECTED: fully_connected, **{op: binary for op in _BINARY},
    Op.MAX_POOL: pool, Op.AVG_POOL: pool, Op.MEAN: mean, Op.CLAMP: clamp, Op.PRELU: prelu,
    Op.LEAKY_RELU: lambda w, n: _unary_op(w, n, "LeakyRelu", alpha=float(n.attrs.alpha)),
    Op.SIGMOID: lambda w, n: _unary_op(w, n, "Sigmoid"), Op.TANH: lambda w, n: _unary_op(w, n, "Tanh"),
    Op.HARD_SWISH: lambda w, n: _unary_op(w, n, "HardSwish"), Op.SOFTMAX: softmax, Op.CONCAT: concat,
    Op.SLICE: slice_, Op.PAD: pad, Op.RESHAPE: reshape, Op.TRANSPOSE: transpose, Op.RESIZE: resize,
    Op.QUANTIZE: quantize, Op.MATMUL: matmul, Op.UNARY: unary,
    **{op: mean for op in (Op.REDUCE_SUM, Op.REDUCE_MAX, Op.REDUCE_MIN)},
}

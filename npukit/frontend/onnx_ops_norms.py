"""ONNX norms composed of NPU operators: ReduceSumSquare, ReduceL1, ReduceL2 (a square or an
absolute value, a REDUCE_SUM, a square-root table); LpNormalization (x times the reciprocal or
reciprocal square root of its norm along an axis, as an embedding head normalises);
InstanceNormalization / GroupNormalization (rows of a channel or a group normalised by
LAYER_NORM, then a per-channel scale and shift); and LogSoftmax (x less its maximum, less the
log of the sum of the exps of that); LRN over channels (x times (bias + alpha / size * the
window's sum of squares) ^ -beta: a square, a 1x1 convolution by a banded matrix, a power
table and a product)."""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import UnsupportedOpError
from ..ir.graph import ConvAttrs, LayerNormAttrs, Op, ReshapeAttrs, UnaryAttrs
from .onnx_builder import Builder
from .onnx_const import attributes
from .onnx_ops_eltwise import _binary, unary_of
from .onnx_ops_nn import scale_shift
from .onnx_ops_tensor import _reduce_node


def _unary(b: Builder, src: str, fn: str, out: str) -> None:
    unary_of(b, src, Op.UNARY, UnaryAttrs(fn), out)


def _summed(b: Builder, node, src: str, p: int, out: str, along: int | None = None) -> None:
    """out = ReduceSum of |src| (p 1) or src^2 (p 2) over `node`'s axes, or kept along `along`."""
    term = b.fresh(out + "/term")
    if p == 1:
        _unary(b, src, "abs", term)
    else:
        _binary(b, node, Op.MUL, src, src, term)
    if along is not None:
        _reduce_node(b, _reduction(term, out, along), Op.REDUCE_SUM)
        return
    total = onnx.NodeProto()
    total.CopyFrom(node)
    total.input[0], total.output[0] = term, out
    _reduce_node(b, total, Op.REDUCE_SUM)


def _reduce_norm(p: int, root: bool):
    def convert(b: Builder, node) -> None:
        if not root:
            _summed(b, node, node.input[0], p, node.output[0])
            return
        total = b.fresh(node.output[0] + "/sum_of_squares")
        _summed(b, node, node.input[0], p, total)
        _unary(b, total, "sqrt", node.output[0])
    return convert


def lp_normalization(b: Builder, node) -> None:
    p = attributes(node).get("p", 2)
    if p not in (1, 2):
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: LpNormalization with p={p} (only 1 and 2)")
    total = b.fresh(node.output[0] + "/norm_sum")
    _summed(b, node, node.input[0], p, total, along=attributes(node).get("axis", -1))
    inverse = b.fresh(node.output[0] + "/inverse_norm")
    _unary(b, total, "reciprocal" if p == 1 else "rsqrt", inverse)
    _binary(b, node, Op.MUL, node.input[0], inverse, node.output[0])


def _normalised_groups(b: Builder, node, groups: int, out: str) -> None:
    """out = x [N, C, ...] with each of its N x `groups` groups of channels (all their
    positions) normalised to mean 0 and variance 1: one LAYER_NORM row a group."""
    a = b.act(node.input[0])
    if a.rank < 3 or a.shape[1] % groups:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: {node.op_type} of shape {a.shape} "
                                 f"in {groups} groups")
    rows = (a.shape[0] * groups, int(np.prod(a.shape[1:])) // groups)
    flat = b.emit(Op.RESHAPE, [b.onnx_layout(node.input[0])], ReshapeAttrs(rows), b.fresh(out + "_rows"))
    ones = b.add_const(np.ones(rows[1], np.float32), out + "_gamma")
    zeros = b.add_const(np.zeros(rows[1], np.float32), out + "_beta")
    eps = float(attributes(node).get("epsilon", 1e-5))
    norm = b.emit(Op.LAYER_NORM, [flat, ones, zeros], LayerNormAttrs(eps), b.fresh(out + "_normalised_rows"))
    b.reshape_to_onnx(out, norm, a.shape)


def instance_normalization(b: Builder, node) -> None:
    channels = b.act(node.input[0]).shape[1]
    normalised = b.fresh(node.output[0] + "/normalised")
    _normalised_groups(b, node, channels, normalised)
    scale_shift(b, normalised, b.const(node.input[1], "scale").astype(np.float64).ravel(),
                b.const(node.input[2], "bias").astype(np.float64).ravel(), node.output[0])


def group_normalization(b: Builder, node) -> None:
    """Scale and bias per channel (opset 21) or per group (opset 18, repeated over its channels)."""
    groups, channels = int(attributes(node)["num_groups"]), b.act(node.input[0]).shape[1]
    normalised = b.fresh(node.output[0] + "/normalised")
    _normalised_groups(b, node, groups, normalised)
    scale, bias = (b.const(n, what).astype(np.float64).ravel() for n, what in zip(node.input[1:3], ("scale", "bias")))
    if scale.size == groups != channels:
        scale, bias = np.repeat(scale, channels // groups), np.repeat(bias, channels // groups)
    scale_shift(b, normalised, scale, bias, node.output[0])


def log_softmax(b: Builder, node) -> None:
    """d = x - max(x), y = d - log(sum(exp(d))) over one axis: exact for the top classes in int8
    (no exp of a small value is needed), where log(softmax) would round the others to log 0."""
    a = b.act(node.input[0])
    axis = attributes(node).get("axis", -1 if b.opset >= 13 else 1) % a.rank
    if b.opset < 13 and axis != a.rank - 1:
        raise UnsupportedOpError(f"ONNX node {b.source[-1]!r}: LogSoftmax-{b.opset} over axes {axis}.. "
                                 "(only the last)")
    out = node.output[0]
    top, d, e, total, log = (b.fresh(f"{out}/{part}") for part in ("max", "shifted", "exp", "sum", "log_sum"))
    _reduce_node(b, _reduction(node.input[0], top, axis), Op.REDUCE_MAX)
    _binary(b, node, Op.SUB, node.input[0], top, d)
    _unary(b, d, "exp", e)
    _reduce_node(b, _reduction(e, total, axis), Op.REDUCE_SUM)
    _unary(b, total, "log", log)
    _binary(b, node, Op.SUB, d, log, out)


def _reduction(src: str, dst: str, axis: int) -> onnx.NodeProto:
    """A keep-dims reduction of `src` over `axis` for `_reduce_node` (which takes the IR op)."""
    return onnx.helper.make_node("ReduceSum", [src], [dst], axes=[axis], keepdims=1)


def lrn(b: Builder, node) -> None:
    """ONNX LRN of a 4-D input: channel c's window is [c - (size-1)//2, c + ceil((size-1)/2)]."""
    at = attributes(node)
    x, out = node.input[0], node.output[0]
    c = b.act(x).shape[1]
    b.nhwc(x)                       # a 4-D input, else the host runs it
    size = int(at["size"])
    alpha, beta, bias = float(at.get("alpha", 1e-4)), float(at.get("beta", 0.75)), float(at.get("bias", 1.0))
    band = np.zeros((c, 1, 1, c), np.float32)      # [out, kh, kw, in]
    for o in range(c):
        band[o, 0, 0, max(0, o - (size - 1) // 2):min(c, o + size // 2 + 1)] = alpha / size
    sq = out + "/square"
    _binary(b, node, Op.MUL, x, x, sq)
    wt = b.add_const(band, out + "/band")
    bt = b.add_const(np.full(c, bias, np.float32), out + "/bias")
    d = out + "/denominator"
    b.emit_result(d, Op.CONV2D, [b.nhwc(sq), wt, bt], ConvAttrs(), nhwc=True)
    scale = out + "/scale"
    unary_of(b, d, Op.UNARY, UnaryAttrs("pow", -beta), scale)
    _binary(b, node, Op.MUL, x, scale, out)


NORM_CONVERTERS = {
    "LogSoftmax": log_softmax, "LRN": lrn,
    "InstanceNormalization": instance_normalization, "GroupNormalization": group_normalization,
    "ReduceSumSquare": _reduce_norm(2, False), "ReduceL1": _reduce_norm(1, False),
    "ReduceL2": _reduce_norm(2, True), "LpNormalization": lp_normalization,
}

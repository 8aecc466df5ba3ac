"""ONNX norms composed of NPU operators: ReduceSumSquare, ReduceL1, ReduceL2 (a square or an
absolute value, a REDUCE_SUM, a square-root table) and LpNormalization (x times the reciprocal
or reciprocal square root of its norm along an axis, as an embedding head normalises)."""
from __future__ import annotations

import onnx

from ..errors import UnsupportedOpError
from ..ir.graph import Op, UnaryAttrs
from .onnx_builder import Builder
from .onnx_const import attributes
from .onnx_ops_eltwise import _binary
from .onnx_ops_tensor import _reduce_node


def _unary(b: Builder, src: str, fn: str, out: str) -> None:
    a = b.act(src)
    b.emit_result(out, Op.UNARY, [a.ir], UnaryAttrs(fn), nhwc=a.nhwc)


def _summed(b: Builder, node, src: str, p: int, out: str, keepdims: bool | None = None) -> None:
    """out = ReduceSum over `node`'s axes of |src| (p 1) or src^2 (p 2)."""
    term = b.fresh(out + "/term")
    if p == 1:
        _unary(b, src, "abs", term)
    else:
        _binary(b, node, Op.MUL, src, src, term)
    total = onnx.NodeProto()
    total.CopyFrom(node)
    total.op_type = "ReduceSum"
    total.input[0], total.output[0] = term, out
    if keepdims is not None:
        del total.attribute[:]
        total.attribute.extend([onnx.helper.make_attribute("axes", [attributes(node).get("axis", -1)]),
                                onnx.helper.make_attribute("keepdims", int(keepdims))])
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
    _summed(b, node, node.input[0], p, total, keepdims=True)
    inverse = b.fresh(node.output[0] + "/inverse_norm")
    _unary(b, total, "reciprocal" if p == 1 else "rsqrt", inverse)
    _binary(b, node, Op.MUL, node.input[0], inverse, node.output[0])


NORM_CONVERTERS = {
    "ReduceSumSquare": _reduce_norm(2, False), "ReduceL1": _reduce_norm(1, False),
    "ReduceL2": _reduce_norm(2, True), "LpNormalization": lp_normalization,
}

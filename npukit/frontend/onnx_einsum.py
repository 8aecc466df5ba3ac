"""ONNX Einsum of an activation by a constant: a (grouped) pointwise convolution.

Two operands, one of them constant, an explicit `->` and no repeated index within an operand:
each index of the activation X is a batch index (X and the output only), a group index (X,
the constant W and the output: DeepFilterNet's grouped linear `btgi,gih->btgh`) or a
contracted one (X and W only); W's own indices (W and the output) are the output features,
and a W index in neither X nor the output is summed out of W at import. X is transposed to
[batch..., group..., contracted...] and viewed as one row of pixels [1, 1, B, G*I], a 1 x 1
convolution with G groups of I -> H channels computes every product, and the result is
viewed as [batch..., group..., features...] and transposed to the output's order. Einsums
with two activations, a reduction of X alone or an ellipsis stay on the host.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import UnsupportedOpError
from ..ir.graph import ConvAttrs, Op, ReshapeAttrs, TransposeAttrs
from .onnx_builder import Builder
from .onnx_const import attributes


def _refuse(b: Builder, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"ONNX Einsum {why} (node '{b.source[-1]}')")


def _parse(b: Builder, eq: str) -> tuple[str, str, str]:
    eq = eq.replace(" ", "")
    if "->" not in eq or "." in eq:
        raise _refuse(b, f"'{eq}' without an explicit output or with an ellipsis")
    lhs, out = eq.split("->")
    ins = lhs.split(",")
    if len(ins) != 2 or any(len(set(s)) != len(s) for s in (*ins, out)):
        raise _refuse(b, f"'{eq}': only two operands without repeated indices")
    return ins[0], ins[1], out


def einsum(b: Builder, node) -> None:
    eq = attributes(node).get("equation", "")
    eq = eq.decode() if isinstance(eq, bytes) else str(eq)
    s0, s1, out = _parse(b, eq)
    if len(node.input) != 2 or b.is_const(node.input[0]) == b.is_const(node.input[1]):
        raise _refuse(b, f"'{eq}' of two activations (or two constants)")
    k = 0 if b.is_const(node.input[1]) else 1
    xs, ws = (s0, s1) if k == 0 else (s1, s0)
    x, w = b.act(node.input[k]), b.const(node.input[1 - k]).astype(np.float32)
    if len(xs) != x.rank or len(ws) != w.ndim:
        raise _refuse(b, f"'{eq}': operand ranks {x.rank} and {w.ndim}")
    batch = [c for c in xs if c not in ws]
    groups = [c for c in xs if c in ws and c in out]
    summed = [c for c in xs if c in ws and c not in out]
    if any(c not in out for c in batch):
        raise _refuse(b, f"'{eq}' summing the activation alone")
    extra = [i for i, c in enumerate(ws) if c not in xs and c not in out]
    if extra:                                   # summed out of the constant alone
        w = w.sum(axis=tuple(extra))
        ws = "".join(c for c in ws if c in xs or c in out)
    feats = [c for c in ws if c not in xs]
    if sorted(out) != sorted(batch + groups + feats):
        raise _refuse(b, f"'{eq}': output indices not those of the operands")
    dims = {c: x.shape[i] for i, c in enumerate(xs)} | {c: w.shape[i] for i, c in enumerate(ws)}
    if any(dims[c] != x.shape[xs.index(c)] for c in groups + summed):
        raise _refuse(b, f"'{eq}': operand sizes differ on a shared index")
    nb, ng, ni, nh = (math.prod(dims[c] for c in cs) for cs in (batch, groups, summed, feats))
    name = node.output[0]
    src = b.onnx_layout(node.input[k])
    perm = tuple(xs.index(c) for c in batch + groups + summed)
    if perm != tuple(range(len(perm))):
        src = b.emit(Op.TRANSPOSE, [src], TransposeAttrs(perm), b.fresh(f"{name}/operand_order"))
    row = b.emit(Op.RESHAPE, [src], ReshapeAttrs((1, 1, nb, ng * ni)), b.fresh(f"{name}/pixels"))
    wp = w.transpose([ws.index(c) for c in groups + summed + feats]).reshape(ng, ni, nh)
    w_ir = wp.transpose(0, 2, 1).reshape(ng * nh, 1, 1, ni)       # OHWI, G groups of I -> H
    wt = b.add_const(w_ir, f"{name}/weights")
    bt = b.add_const(np.zeros(ng * nh, np.float32), f"{name}/bias")
    conv = b.emit(Op.CONV2D, [row, wt, bt], ConvAttrs(groups=ng), b.fresh(f"{name}/products"))
    order = batch + groups + feats
    shaped = tuple(dims[c] for c in order)
    back = tuple(order.index(c) for c in out)
    if back == tuple(range(len(back))):
        b.emit_result(name, Op.RESHAPE, [conv], ReshapeAttrs(shaped), nhwc=False)
        return
    r = b.emit(Op.RESHAPE, [conv], ReshapeAttrs(shaped), b.fresh(f"{name}/result"))
    b.emit_result(name, Op.TRANSPOSE, [r], TransposeAttrs(back), nhwc=False)


EINSUM_CONVERTERS = {"Einsum": einsum}

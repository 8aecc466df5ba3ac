"""ONNX converters for transformer layers: MatMul of two activations, LayerNormalization,
Gelu (also fused from Erf / Tanh forms by onnx_fuse), Gather of embeddings, and the mask
plumbing (Where, IsNaN, Expand) that remains once constant masks have been folded."""
from __future__ import annotations

import math

import numpy as np
from onnx import helper

from ..errors import UnsupportedOpError
from ..ir.graph import (DType, EltwiseAttrs, GatherAttrs, GeluAttrs, LayerNormAttrs, MatMulAttrs, NoAttrs, Op,
                        ReshapeAttrs, SoftmaxAttrs, TransposeAttrs)
from .onnx_builder import Act, Builder
from .onnx_check import check_shape
from .onnx_const import attributes
from .onnx_ops_eltwise import ELTWISE_CONVERTERS, _binary, _rank
from .onnx_ops_nn import NN_CONVERTERS
from .onnx_ops_tensor import gather_rows
from .onnx_ops_tensor import TENSOR_CONVERTERS


def _unsupported(b: Builder, what: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"unsupported ONNX operator {what} (node '{b.source[-1]}')")


def matmul(b: Builder, node) -> None:
    if b.is_const(node.input[1]):
        NN_CONVERTERS["MatMul"](b, node)         # activation x weights: fully connected
        return
    if b.is_const(node.input[0]):
        _const_by_activation(b, node)
        return
    a, w = b.act(node.input[0]), b.act(node.input[1])
    if a.rank < 2 or w.rank < 2:
        raise _unsupported(b, f"'MatMul' of shapes {a.shape} x {w.shape} (1-D operand)")
    x, y = b.onnx_layout(node.input[0]), b.onnx_layout(node.input[1])
    b.emit_result(node.output[0], Op.MATMUL, [x, y], MatMulAttrs(False), nhwc=False)


def _const_by_activation(b: Builder, node) -> None:
    """C @ X with C a constant matrix (a mel filterbank applied to a [.., bins, frames]
    spectrogram) is (X^T @ C^T)^T: X's last two axes swapped, a fully connected layer by C^T,
    swapped back."""
    c, a = b.const(node.input[0]), b.act(node.input[1])
    while a.rank >= c.ndim > 2 and c.shape[0] == 1:     # (a leading 1 the output's rank keeps anyway)
        c = c[0]
    lead = c.shape[:-2]         # a stack of constant matrices over one 2-D activation: one taller matrix
    if a.rank < 2 or c.ndim < 2 or (lead and a.rank != 2):
        raise _unsupported(b, f"'MatMul' of a constant of shape {list(c.shape)} by an activation of rank {a.rank}")
    c = c.reshape(-1, c.shape[-1])
    out = node.output[0]
    perm = tuple(range(a.rank - 2)) + (a.rank - 1, a.rank - 2)
    xt, ct, yt, st = f"{out}/x_swapped", f"{out}/constant_swapped", f"{out}/swapped", f"{out}/stacked"
    b.emit_result(xt, Op.TRANSPOSE, [b.onnx_layout(node.input[1])], TransposeAttrs(perm), nhwc=False)
    b.values[ct] = np.ascontiguousarray(c.T.astype(np.float32))
    NN_CONVERTERS["MatMul"](b, helper.make_node("MatMul", [xt, ct], [yt], name=node.name))
    if not lead:
        b.emit_result(out, Op.TRANSPOSE, [b.onnx_layout(yt)], TransposeAttrs(perm), nhwc=False)
        return
    y = b.emit(Op.TRANSPOSE, [b.onnx_layout(yt)], TransposeAttrs(perm), b.fresh(st))
    b.emit_result(out, Op.RESHAPE, [y], ReshapeAttrs((*lead, c.shape[0] // math.prod(lead), a.shape[-1])),
                  nhwc=False)


def gemm(b: Builder, node) -> None:
    """Gemm: by constant weights, a fully connected layer; by an activation B, a MATMUL (B
    transposed by transB), then alpha's scale and C (times beta) added."""
    if b.is_const(node.input[1]):
        NN_CONVERTERS["Gemm"](b, node)
        return
    at, out = attributes(node), node.output[0]
    if b.is_const(node.input[0]) or b.act(node.input[0]).rank != 2 or b.act(node.input[1]).rank != 2:
        raise _unsupported(b, "'Gemm' of two operands other than 2-D activations")
    x = b.onnx_layout(node.input[0])
    if at.get("transA", 0):
        x = b.emit(Op.TRANSPOSE, [x], TransposeAttrs((1, 0)), b.fresh(f"{out}/a_t"))
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    c = node.input[2] if len(node.input) > 2 and node.input[2] and beta != 0 else ""
    if c and not b.is_const(c) and beta != 1.0:
        raise _unsupported(b, "'Gemm' with a non-constant C and beta != 1")
    prod = out if alpha == 1.0 and not c else f"{out}/product"
    b.emit_result(prod, Op.MATMUL, [x, b.onnx_layout(node.input[1])], MatMulAttrs(bool(at.get("transB", 0))),
                  nhwc=False)
    if alpha != 1.0:
        b.values[f"{out}/alpha"] = np.asarray(alpha, np.float32)
        _binary(b, node, Op.MUL, prod, f"{out}/alpha", out if not c else f"{out}/scaled")
        prod = f"{out}/scaled"
    if c:
        if b.is_const(c):
            b.values[f"{out}/c"] = (b.const(c) * np.float32(beta)).astype(np.float32)
            c = f"{out}/c"
        _binary(b, node, Op.ADD, prod, c, out)


def layer_norm(b: Builder, node) -> None:
    at = attributes(node)
    a = b.act(node.input[0])
    if at.get("axis", -1) % a.rank != a.rank - 1:
        raise _unsupported(b, f"'LayerNormalization' over axis {at.get('axis')} (only the last axis)")
    c = a.shape[-1]
    gamma = b.const(node.input[1], "scale").astype(np.float32)
    beta = b.opt_const(node, 2)
    beta = np.zeros(c, np.float32) if beta is None else beta.astype(np.float32)
    if gamma.size not in (1, c) or beta.size not in (1, c):
        raise _unsupported(b, f"'LayerNormalization' with scale {gamma.shape} / bias {beta.shape} "
                              f"not per channel of {c}")
    gt = b.add_const(np.broadcast_to(gamma.ravel(), (c,)).copy(), node.input[1])
    bt = b.add_const(np.broadcast_to(beta.ravel(), (c,)).copy(), node.output[0] + "_beta")
    x = b.onnx_layout(node.input[0])
    b.emit_result(node.output[0], Op.LAYER_NORM, [x, gt, bt],
                  LayerNormAttrs(float(at.get("epsilon", 1e-5))), nhwc=False)


def gelu(b: Builder, node) -> None:
    a = b.act(node.input[0])
    approx = attributes(node).get("approximate", "none")
    b.emit_result(node.output[0], Op.GELU, [a.ir], GeluAttrs(approx), nhwc=a.nhwc)


def gather(b: Builder, node) -> None:
    axis = attributes(node).get("axis", 0)
    if not b.is_const(node.input[0]) and b.is_const(node.input[1]):
        return gather_rows(b, node, axis)
    if not b.is_const(node.input[0]) or axis != 0:
        raise _unsupported(b, "'Gather' other than rows of a constant table (embeddings)")
    idx = b.act(node.input[1])
    if b.tensors[idx.ir].dtype not in (DType.I32, DType.I64):
        raise _unsupported(b, f"'Gather' with float indices {node.input[1]!r}")
    table = b.const(node.input[0]).astype(np.float32, copy=False)
    t = b.add_const(table, node.input[0])
    b.emit_result(node.output[0], Op.GATHER, [t, idx.ir], GatherAttrs(0), nhwc=False)


def is_nan(b: Builder, node) -> None:
    """IR activations are finite: IsNaN of one is constant False, so what reads it folds (a
    Where picks its other operand; a Gather or Slice of the mask is a constant too)."""
    b.values[node.output[0]] = np.zeros(b.act(node.input[0]).shape, bool)


def where(b: Builder, node) -> None:
    cond, x, y = node.input
    cv = b.values.get(cond)
    if not isinstance(cv, np.ndarray):    # a data-dependent choice: WHERE on the VPU
        rank = max(_rank(b, n) for n in node.input)
        b.emit_result(node.output[0], Op.WHERE, [b.operand(n, rank) for n in node.input], NoAttrs(), nhwc=rank == 4)
        return
    c = cv.astype(bool)
    if c.all() or (~c).all():
        pick = x if c.all() else y
        if isinstance(b.values.get(pick), Act) and _same_shape(b, pick, c.shape):
            b.alias(node.output[0], pick)
            return
    # x * c + y * (1 - c), with the constant parts folded
    b.values[node.output[0] + "/cond"] = c.astype(np.float32)
    b.values[node.output[0] + "/notcond"] = (~c).astype(np.float32)
    left = _binary(b, node, Op.MUL, x, node.output[0] + "/cond", node.output[0] + "/x")
    right = _binary(b, node, Op.MUL, y, node.output[0] + "/notcond", node.output[0] + "/y")
    _ = (left, right)
    _binary(b, node, Op.ADD, node.output[0] + "/x", node.output[0] + "/y", node.output[0])


def _same_shape(b: Builder, name: str, other: tuple[int, ...]) -> bool:
    shape = b.act(name).shape
    return tuple(np.broadcast_shapes(shape, other)) == tuple(shape)


def expand(b: Builder, node) -> None:
    a = b.act(node.input[0])
    shape = tuple(int(d) for d in b.const(node.input[1], "shape").ravel())
    if _same_shape(b, node.input[0], shape):
        b.alias(node.output[0], node.input[0])
        return
    out = tuple(np.broadcast_shapes(a.shape, shape))
    check_shape(out, f"the result of ONNX node {b.source[-1]!r} (Expand)")
    b.values[node.output[0] + "/zeros"] = np.zeros(out, np.float32)
    _binary(b, node, Op.ADD, node.input[0], node.output[0] + "/zeros", node.output[0])


def add(b: Builder, node) -> None:
    """Add; adding a constant zero (a folded all-pass attention mask) is an alias."""
    for i in (0, 1):
        v = b.values.get(node.input[i])
        other = node.input[1 - i]
        if isinstance(v, np.ndarray) and not np.any(v) and isinstance(b.values.get(other), Act) \
                and _same_shape(b, other, v.shape):
            b.alias(node.output[0], other)
            return
    if not _scalar_in_onnx_layout(b, node, Op.ADD):
        ELTWISE_CONVERTERS["Add"](b, node)


def _onnx_layout_4d(b: Builder, name: str) -> bool:
    """A 4-D activation whose ONNX-layout (NCHW) tensor already exists: attention tensors,
    which are reshaped views of [tokens, channels], are best kept in ONNX layout."""
    v = b.values.get(name)
    return isinstance(v, Act) and v.rank == 4 and v.ir in b._nchw_view


def _scalar_in_onnx_layout(b: Builder, node, op: Op) -> bool:
    """A 4-D activation times / plus a scalar constant, computed in ONNX layout."""
    for i in (0, 1):
        c = b.values.get(node.input[1 - i])
        if isinstance(c, np.ndarray) and c.size == 1 and _onnx_layout_4d(b, node.input[i]):
            if op is Op.SUB and i == 1:
                return False
            k = b.add_const(np.full((1, 1, 1, 1), float(c.ravel()[0]), np.float32), node.input[1 - i])
            b.emit_result(node.output[0], op, [b.onnx_layout(node.input[i]), k], EltwiseAttrs(), nhwc=False)
            return True
    return False


def mul(b: Builder, node) -> None:
    if not _scalar_in_onnx_layout(b, node, Op.MUL):
        ELTWISE_CONVERTERS["Mul"](b, node)


def softmax(b: Builder, node) -> None:
    a = b.act(node.input[0])
    axis = attributes(node).get("axis", -1 if b.opset >= 13 else 1) % a.rank
    if a.rank == 4 and axis == 3:        # the last ONNX axis: in ONNX layout, the IR's last axis too
        b.emit_result(node.output[0], Op.SOFTMAX, [b.onnx_layout(node.input[0])], SoftmaxAttrs(3), nhwc=False)
        return
    TENSOR_CONVERTERS["Softmax"](b, node)


TRANSFORMER_CONVERTERS = {
    "Mul": mul, "Softmax": softmax,
    "MatMul": matmul, "Gemm": gemm, "LayerNormalization": layer_norm, "Gelu": gelu, "Gather": gather,
    "IsNaN": is_nan, "Where": where, "Expand": expand, "Add": add,
}


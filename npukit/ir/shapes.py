"""Output shapes of every IR op: used by frontends to build graphs and by the verifier."""
from __future__ import annotations

import numpy as np

from ..errors import ModelError
from .graph import (Node, Op)


def conv_out_hw(h, w, kh, kw, a) -> tuple[int, int]:
    """Spatial output size of a (possibly dilated / transposed) convolution."""
    (sh, sw), (dh, dw), (ih, iw) = a.stride, a.dilation, a.input_dilation
    t, l, b, r = a.pads
    hin, win = (h - 1) * ih + 1, (w - 1) * iw + 1
    oh = (hin + t + b - dh * (kh - 1) - 1) // sh + 1
    ow = (win + l + r - dw * (kw - 1) - 1) // sw + 1
    return oh, ow


def broadcast(*shapes) -> tuple[int, ...]:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as e:
        raise ModelError(f"shapes {shapes} do not broadcast") from e


def slice_len(dim: int, begin: int, end: int, step: int) -> int:
    return len(range(*slice(begin, end, step).indices(dim)))


REDUCTIONS = frozenset({Op.MEAN, Op.REDUCE_SUM, Op.REDUCE_MAX, Op.REDUCE_MIN, Op.ARG_MAX})


def gather_reduced_axes(rank: int, axes) -> tuple[int, ...] | None:
    """The permutation that makes a reduction's axes adjacent (kept axes first, in order, then
    the reduced ones), or None when they already are."""
    red = sorted({a % rank for a in axes})
    if not red or red == list(range(red[0], red[-1] + 1)):
        return None
    return tuple(d for d in range(rank) if d not in red) + tuple(red)


def infer(node: Node, shapes: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    op, a = node.op, node.attrs
    x = shapes[0] if shapes else ()
    if op is Op.CONV2D:
        w = shapes[1]
        oh, ow = conv_out_hw(x[1], x[2], w[1], w[2], a)
        return [(x[0], oh, ow, w[3] if a.depthwise else w[0])]
    if op is Op.FULLY_CONNECTED:
        if len(shapes[1]) != 2 or not x or x[-1] != shapes[1][1]:
            raise ModelError(f"{node.name}: fully connected input {x} does not fit weights {shapes[1]}")
        return [x[:-1] + (shapes[1][0],)]
    if op in (Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.COMPARE, Op.LOGICAL, Op.WHERE):
        return [broadcast(*shapes)]
    if op in (Op.MAX_POOL, Op.AVG_POOL):
        (kh, kw), (sh, sw), (t, l, b, r) = a.kernel, a.stride, a.pads
        return [(x[0], (x[1] + t + b - kh) // sh + 1, (x[2] + l + r - kw) // sw + 1, x[3])]
    if op in REDUCTIONS:
        axes = {ax % len(x) for ax in a.axes}
        return [tuple(1 if i in axes else d for i, d in enumerate(x) if a.keepdims or i not in axes)]
    if op in (Op.CLAMP, Op.LEAKY_RELU, Op.PRELU, Op.SIGMOID, Op.TANH, Op.HARD_SWISH, Op.SOFTMAX, Op.UNARY, Op.LOGICAL_NOT,
              Op.QUANTIZE, Op.DEQUANTIZE):
        return [x]
    if op is Op.CONCAT:
        ax = a.axis % len(x)
        return [x[:ax] + (sum(s[ax] for s in shapes),) + x[ax + 1:]]
    if op is Op.SLICE:
        return [tuple(slice_len(d, b, e, s) for d, b, e, s in zip(x, a.begin, a.end, a.step))]
    if op is Op.PAD:
        return [tuple(d + p0 + p1 for d, (p0, p1) in zip(x, a.pads))]
    if op is Op.MAGNITUDE:
        ax = a.axis % len(x)
        if x[ax] % 2:
            raise ModelError(f"{node.name}: magnitude needs an even length on axis {ax}, got {x}")
        return [x[:ax] + (x[ax] // 2,) + x[ax + 1:]]
    if op is Op.RESHAPE:
        if int(np.prod(a.shape)) != int(np.prod(x)):
            raise ModelError(f"{node.name}: cannot reshape {x} to {a.shape}")
        return [a.shape]
    if op is Op.TRANSPOSE:
        return [tuple(x[p] for p in a.perm)]
    if op is Op.RESIZE:
        return [(x[0], a.size[0], a.size[1], x[3])]
    if op in (Op.HOST_FLOAT, Op.HOST_TFLITE):
        return [tuple(s) for s in a.out_shapes]
    if op is Op.LSTM:                  # (B, T, I) -> (B, T, O), final h (B, O) and c (B, C)
        return [x[:2] + (shapes[2][-1],), tuple(shapes[4]), tuple(shapes[5])][:len(node.outputs)]
    if op is Op.GRU:                   # (B, T, I) -> (B, T, C), final h (B, C)
        return [x[:2] + (shapes[2][1],), tuple(shapes[5])][:len(node.outputs)]
    if op in (Op.MATMUL, Op.LAYER_NORM, Op.GELU, Op.GATHER):
        return [_transformer_shape(node, shapes)]
    raise ModelError(f"{node.name}: no shape rule for {op}")


def _transformer_shape(node: Node, shapes: list[tuple[int, ...]]) -> tuple[int, ...]:
    x = shapes[0] if shapes else ()
    if node.op is Op.MATMUL:
        b = shapes[1]
        kb, n = (b[-1], b[-2]) if node.attrs.transpose_b else (b[-2], b[-1])
        if len(x) < 2 or len(b) < 2 or x[-1] != kb:
            raise ModelError(f"{node.name}: matmul of {x} by {b} (transpose_b={node.attrs.transpose_b})")
        return broadcast(x[:-2], b[:-2]) + (x[-2], n)
    if node.op is Op.GATHER:
        return tuple(shapes[1]) + tuple(x[1:])
    return x

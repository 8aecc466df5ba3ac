"""Layer norm from moments, as flax's LayerNorm exports through jax2tf (Magika):

    mean = ReduceSum(x, [a]) * c        mean2 = ReduceSum(x * x, [a]) * c       (c = 1 / n)
    var = Max(0, mean2 - mean * mean)   (each broadcast back by Reshape / Expand)
    y = (x - mean) * (Reciprocal(Sqrt(var + eps)) * gamma) [+ beta]

E[x^2] - E[x]^2 cancels catastrophically in int8; as one LayerNormalization over axis `a`
the normalisation is computed whole. `a` need not be the last axis: the fused form is then
Transpose (a <-> last), LayerNormalization, Transpose back.
"""
from __future__ import annotations

import numpy as np
import onnx

from .onnx_fuse import GraphView

_BROADCASTS = ("Reshape", "Expand", "Unsqueeze")


def _through_broadcasts(v: GraphView, name: str, nodes: list) -> str:
    """The value under a chain of Reshape / Expand / Unsqueeze (the chain joins `nodes`)."""
    while (n := v.producer.get(name)) is not None and n.op_type in _BROADCASTS:
        nodes.append(n)
        name = n.input[0]
    return name


def _other(n: onnx.NodeProto, name: str) -> str:
    return n.input[1] if n.input[0] == name else n.input[0]


def _sum_axis(v: GraphView, n: onnx.NodeProto | None) -> int | None:
    """The one axis of a ReduceSum (axes as input, opset 13+, or attribute)."""
    if n is None:
        return None
    ints = [list(a.ints) for a in n.attribute if a.name == "axes"]
    axes = ints[0] if ints else (list(v.consts[n.input[1]].ravel()) if len(n.input) > 1
                                 and n.input[1] in v.consts else None)
    return int(axes[0]) if axes is not None and len(axes) == 1 else None


def _scaled_sum(v: GraphView, name: str):
    """(ReduceSum input, axis, c, nodes) of Mul(ReduceSum(t, [axis]), c), else None."""
    mul = v.node(name, "Mul")
    if mul is None:
        return None
    for i in (0, 1):
        red, c = v.node(mul.input[i], "ReduceSum"), v.scalar(mul.input[1 - i])
        axis = _sum_axis(v, red)
        if red is not None and c is not None and axis is not None:
            return red.input[0], axis, c, [mul, red]
    return None


def match_moment_layer_norm(v: GraphView, mul: onnx.NodeProto):
    """(nodes, x, out, (eps, gamma, beta, axis, rank)) of the pattern ending at Mul `mul`."""
    if mul.op_type != "Mul":
        return None
    for i in (0, 1):
        sub = v.node(mul.input[i], "Sub")
        scale = v.node(mul.input[1 - i], "Mul")
        if sub is not None and scale is not None:
            m = _match(v, mul, sub, scale)
            if m is not None:
                return m
    return None


def _match(v: GraphView, mul, sub, scale):
    nodes: list = [mul, sub, scale]
    x = sub.input[0]
    mean = _scaled_sum(v, _through_broadcasts(v, sub.input[1], nodes))
    if mean is None or mean[0] != x:
        return None
    _, axis, c, found = mean
    nodes += found
    recip, gamma = None, None
    for i in (0, 1):
        if scale.input[1 - i] in v.consts and (r := v.node(scale.input[i], "Reciprocal")) is not None:
            recip, gamma = r, v.consts[scale.input[1 - i]]
    sqrt = recip and v.node(recip.input[0], "Sqrt")
    add = sqrt and v.node(sqrt.input[0], "Add")
    if add is None:
        return None
    nodes += [recip, sqrt, add]
    eps = v.scalar(add.input[1]) if v.scalar(add.input[1]) is not None else v.scalar(add.input[0])
    var_in = add.input[0] if v.scalar(add.input[1]) is not None else add.input[1]
    clamp = v.node(_through_broadcasts(v, var_in, nodes), "Max")
    if eps is None or clamp is None or clamp.input[0] not in v.consts and clamp.input[1] not in v.consts:
        return None
    zero = clamp.input[0] if clamp.input[0] in v.consts else clamp.input[1]
    diff = v.node(_other(clamp, zero), "Sub")
    if v.scalar(zero) != 0.0 or diff is None:
        return None
    nodes += [clamp, diff]
    sq_mean = v.node(diff.input[1], "Mul")
    mean2 = _scaled_sum(v, diff.input[0])
    if sq_mean is None or mean2 is None or list(sq_mean.input) != [mean[3][0].output[0]] * 2:
        return None
    squares = v.node(mean2[0], "Mul")
    if squares is None or list(squares.input) != [x, x] or mean2[1] != axis or mean2[2] != c:
        return None
    nodes += [sq_mean, *mean2[3], squares]
    if gamma is None:               # the width along the axis is known only from gamma
        return None
    width, rank = [d for d in gamma.shape if d != 1], gamma.ndim
    if len(width) != 1 or rank < 2 or gamma.shape[axis % rank] != width[0] or abs(c * width[0] - 1) > 1e-4:
        return None
    from .onnx_fuse import absorb_const_user
    beta, out = absorb_const_user(v, mul.output[0], "Add", nodes)
    if beta is not None and beta.size not in (1, width[0]):
        return None
    return nodes, x, out, (float(eps), gamma, beta, axis % rank, rank)


def fused_nodes(x: str, out: str, name: str, extra) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    """The LayerNormalization (between two transposes if the axis is not the last)."""
    from onnx import helper, numpy_helper
    eps, gamma, beta, axis, rank = extra
    g = gamma.astype(np.float32).ravel()
    b = np.zeros_like(g) if beta is None else np.broadcast_to(beta.astype(np.float32).ravel(), g.shape).copy()
    inits = [numpy_helper.from_array(g, name + "/gamma"), numpy_helper.from_array(b, name + "/beta")]
    if axis == rank - 1:
        return [helper.make_node("LayerNormalization", [x, name + "/gamma", name + "/beta"], [out], name=name,
                                 axis=-1, epsilon=eps)], inits
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    return [helper.make_node("Transpose", [x], [name + "/in"], name=name + "/in", perm=perm),
            helper.make_node("LayerNormalization", [name + "/in", name + "/gamma", name + "/beta"], [name + "/ln"],
                             name=name, axis=-1, epsilon=eps),
            helper.make_node("Transpose", [name + "/ln"], [out], name=name + "/out", perm=perm)], inits

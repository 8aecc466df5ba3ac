"""Element-wise ops moved above the layout ops (TRANSPOSE, RESHAPE) that feed them.

An ONNX 1-D conv is a 2-D conv between a view into NHWC and a view back into [N, C, L]; the
Relu after it and the residual Add run on the [N, C, L] value, between the view back and the
next conv's view in. Moved above the views, the element-wise op sits next to its producer
(a clamp fuses into the conv) and the views meet and cancel (`clean_layout`). Exact: an
element-wise op with per-tensor parameters commutes with any reordering of its elements.

A per-channel Mul / Add by a constant after a Concat over the channel (last) axis (a batch norm
after concatenating embeddings and conv features, e.g. DeepCut) moves into each piece, its
slice of the constant with it: the Concat then joins normalised pieces of like ranges under its
one int8 scale, instead of raw pieces whose widest leaves the others no codes.
"""
from __future__ import annotations

import numpy as np

from ..ir.graph import DType, Graph, Node, Op, Tensor
from .passes import clean_layout
from .rewrite import Index, add_const, apply_rules, const, sole_consumer

_UNARY = (Op.CLAMP, Op.LEAKY_RELU, Op.SIGMOID, Op.TANH, Op.HARD_SWISH, Op.GELU, Op.UNARY)
_BINARY = (Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM)
_LAYOUT = (Op.TRANSPOSE, Op.RESHAPE)


def _view_into(g: Graph, idx: Index, t: str, node: Node) -> Node | None:
    """The layout op producing activation `t`, read only by `node`, from a value read only by it."""
    p = idx.producer.get(t)
    if p is None or p.op not in _LAYOUT or sole_consumer(g, idx, t) is not node:
        return None
    src = g.tensors[p.inputs[0]]
    if src.is_const or src.dtype is not DType.F32 or sole_consumer(g, idx, p.inputs[0]) is not p:
        return None
    return p


def _fresh(tensors: dict[str, Tensor], base: str) -> str:
    name, i = base, 0
    while name in tensors:
        i += 1
        name = f"{base}_{i}"
    return name


def _hoisted(g: Graph, node: Node, views: list[Node]) -> Graph:
    """`node` on the views' inputs, then one copy of the view (views[0]) writing node's output."""
    first = views[0]
    mid = _fresh(g.tensors, node.outputs[0] + "_pre")
    tensors = dict(g.tensors)
    tensors[mid] = Tensor(mid, g.tensors[first.inputs[0]].shape, g.tensors[node.outputs[0]].dtype)
    ins = {v.outputs[0]: v.inputs[0] for v in views}
    moved = node.with_(inputs=tuple(ins.get(t, t) for t in node.inputs), outputs=(mid,))
    view = first.with_(inputs=(mid,), outputs=node.outputs)
    drop = {id(v) for v in views}
    nodes = []
    for n in g.nodes:
        if n is node:
            nodes += [moved, view]
        elif id(n) not in drop:
            nodes.append(n)
    return g.with_nodes(nodes, tensors)


def _hoist_unary(g: Graph, node: Node, idx: Index) -> Graph | None:
    if node.op not in _UNARY or len(node.inputs) != 1:
        return None
    p = _view_into(g, idx, node.inputs[0], node)
    return None if p is None else _hoisted(g, node, [p])


def _hoist_binary(g: Graph, node: Node, idx: Index) -> Graph | None:
    """Both operands the same view of equally shaped values (no broadcast)."""
    if node.op not in _BINARY or len(node.inputs) != 2 or node.inputs[0] == node.inputs[1]:
        return None
    views = [_view_into(g, idx, t, node) for t in node.inputs]
    a, b = views
    if a is None or b is None or a.op is not b.op or a.attrs != b.attrs:
        return None
    if g.tensors[a.inputs[0]].shape != g.tensors[b.inputs[0]].shape \
            or g.tensors[a.outputs[0]].shape != g.tensors[node.outputs[0]].shape:
        return None
    return _hoisted(g, node, [a, b])


def _into_concat(g: Graph, node: Node, idx: Index) -> Graph | None:
    """Mul / Add of a last-axis Concat by a per-channel constant -> the op on each piece."""
    if node.op not in (Op.MUL, Op.ADD) or len(node.inputs) != 2 or getattr(node.attrs, "act", None) is not None:
        return None
    cat = idx.producer.get(node.inputs[0])
    c = const(g, node.inputs[1])
    if cat is None or cat.op is not Op.CONCAT or c is None or sole_consumer(g, idx, node.inputs[0]) is not node:
        return None
    shape = g.tensors[cat.outputs[0]].shape
    if cat.attrs.axis % len(shape) != len(shape) - 1 or c.ndim > len(shape) or c.shape[-1] != shape[-1] \
            or c.size != shape[-1] or g.tensors[node.outputs[0]].shape != shape:
        return None
    tensors = dict(g.tensors)
    nodes_for: list[Node] = []
    pieces, at = [], 0
    for i, t in enumerate(cat.inputs):
        width = g.tensors[t].shape[-1]
        ci = add_const(tensors, np.asarray(c[..., at:at + width], np.float32), f"{node.inputs[1]}_{i}")
        out = _fresh(tensors, f"{node.outputs[0]}_{i}")
        tensors[out] = Tensor(out, g.tensors[t].shape, g.tensors[node.outputs[0]].dtype)
        nodes_for.append(node.with_(name=f"{node.name}_{i}", inputs=(t, ci), outputs=(out,)))
        pieces.append(out)
        at += width
    joined = cat.with_(inputs=tuple(pieces), outputs=node.outputs)
    nodes = []
    for n in g.nodes:
        if n is node:
            nodes += nodes_for + [joined]
        elif n is not cat:
            nodes.append(n)
    return g.with_nodes(nodes, tensors)


def hoist_elementwise(g: Graph) -> Graph:
    """Move element-wise ops above single-use views and into channel concats, then let the
    views cancel."""
    return clean_layout(apply_rules(g, [_hoist_unary, _hoist_binary, _into_concat]))

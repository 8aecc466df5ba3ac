"""Element-wise ops moved above the layout ops (TRANSPOSE, RESHAPE) that feed them.

An ONNX 1-D conv is a 2-D conv between a view into NHWC and a view back into [N, C, L]; the
Relu after it and the residual Add run on the [N, C, L] value, between the view back and the
next conv's view in. Moved above the views, the element-wise op sits next to its producer
(a clamp fuses into the conv) and the views meet and cancel (`clean_layout`). Exact: an
element-wise op with per-tensor parameters commutes with any reordering of its elements.
"""
from __future__ import annotations

from ..ir.graph import DType, Graph, Node, Op, Tensor
from .passes import clean_layout
from .rewrite import Index, apply_rules, sole_consumer

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


def _fresh(g: Graph, base: str) -> str:
    name, i = base, 0
    while name in g.tensors:
        i += 1
        name = f"{base}_{i}"
    return name


def _hoisted(g: Graph, node: Node, views: list[Node]) -> Graph:
    """`node` on the views' inputs, then one copy of the view (views[0]) writing node's output."""
    first = views[0]
    mid = _fresh(g, node.outputs[0] + "_pre")
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


def hoist_elementwise(g: Graph) -> Graph:
    """Move element-wise ops above single-use views, then let the views cancel."""
    return clean_layout(apply_rules(g, [_hoist_unary, _hoist_binary]))

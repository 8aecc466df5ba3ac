"""Fuse an STFT magnitude, sqrt(re^2 + im^2), into one MAGNITUDE node.

Exporters spell it Slice(X, [0, C)) and Slice(X, [C, 2C)) on one axis, Pow(., 2) each, Add,
Sqrt. Pow by 2 and Sqrt arrive as element-wise tables (UNARY); the pattern is
matched on the IR, where the shapes prove that the two slices are exactly the two halves of X's axis (the ONNX graph
only has the slice bounds, often INT_MAX-style ends). The unused slices die afterwards.
"""
from __future__ import annotations

from ..ir.graph import Graph, MagnitudeAttrs, Node, Op
from .rewrite import Index, apply_rules, merged_source, replace_nodes, sole_consumer


def _half(g: Graph, idx: Index, name: str) -> tuple[str, int, int, int] | None:
    """(source, axis, lo, hi) when `name` is a chain of unit-step slices of one source that
    cut a single axis to [lo, hi)."""
    axis, lo, hi = None, 0, None
    node = idx.producer.get(name)
    while node is not None and node.op is Op.SLICE:
        shape = g.tensors[node.inputs[0]].shape
        a = node.attrs
        for d, (dim, b, e, s) in enumerate(zip(shape, a.begin, a.end, a.step)):
            r = range(*slice(b, e, s).indices(dim))
            if s != 1:
                return None
            if (r.start, r.stop) == (0, dim):
                continue
            if axis not in (None, d):
                return None
            axis, lo, hi = d, lo + r.start, (lo + r.stop if hi is None else min(hi, lo + r.stop))
        name = node.inputs[0]
        node = idx.producer.get(name)
    if axis is None or hi is None:     # (hi is set with axis)
        return None
    return name, axis, lo, hi


def _square_of(g: Graph, idx: Index, name: str) -> Node | None:
    node = idx.producer.get(name)
    if node is None or node.op is not Op.UNARY or (node.attrs.fn, node.attrs.alpha) != ("pow", 2.0) \
            or sole_consumer(g, idx, name) is None:
        return None
    return node


def _fuse(g: Graph, node: Node, idx: Index) -> Graph | None:
    if not (node.op is Op.UNARY and node.attrs.fn == "sqrt"):
        return None
    add = idx.producer.get(node.inputs[0])
    if add is None or add.op is not Op.ADD or add.attrs.act is not None or \
            sole_consumer(g, idx, add.outputs[0]) is None:
        return None
    pows = [p for t in add.inputs if (p := _square_of(g, idx, t)) is not None]
    if len(pows) != len(add.inputs):
        return None
    halves = [h for p in pows if (h := _half(g, idx, p.inputs[0])) is not None]
    if len(halves) != len(pows) or halves[0][:2] != halves[1][:2]:
        return None
    src, axis = halves[0][:2]
    n = g.tensors[src].shape[axis]
    if sorted(h[2:] for h in halves) != [(0, n // 2), (n // 2, n)] or n % 2:
        return None
    fused = Node(Op.MAGNITUDE, node.name, (src,), node.outputs, MagnitudeAttrs(axis),
                 source=merged_source(*pows, add, node))
    return replace_nodes(g, [*pows, add, node], fused)


def fuse_magnitude(g: Graph) -> Graph:
    return apply_rules(g, [_fuse])

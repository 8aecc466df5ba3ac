"""Fuse an STFT magnitude, sqrt(re^2 + im^2), into one MAGNITUDE node.

Exporters spell it Slice(X, [0, C)) and Slice(X, [C, 2C)) on one axis, Pow(., 2) each, Add,
Sqrt. Pow by 2 and Sqrt arrive as element-wise tables (UNARY); the pattern is
matched on the IR, where the shapes prove that the two slices are exactly the two halves of X's axis (the ONNX graph
only has the slice bounds, often INT_MAX-style ends). Halves that also crop another axis alike
(silero's v5 export drops the first STFT frame) become one SLICE of that crop, then the
MAGNITUDE. The unused slices die afterwards.
"""
from __future__ import annotations

from dataclasses import replace

from ..ir.graph import Graph, MagnitudeAttrs, Node, Op, SliceAttrs
from .rewrite import Index, apply_rules, merged_source, sole_consumer


def _window(g: Graph, idx: Index, name: str) -> tuple[str, list[tuple[int, int]]] | None:
    """(source, [lo, hi) per axis in the source's coordinates) when `name` is a chain of
    unit-step slices of one source."""
    ranges: list[tuple[int, int]] | None = None
    node = idx.producer.get(name)
    while node is not None and node.op is Op.SLICE:
        a = node.attrs
        if any(s != 1 for s in a.step):
            return None
        cut = [range(*slice(b, e, 1).indices(dim)) for dim, b, e in zip(g.tensors[node.inputs[0]].shape, a.begin, a.end)]
        ranges = [(r.start, r.stop) for r in cut] if ranges is None else \
            [(r.start + lo, r.start + hi) for r, (lo, hi) in zip(cut, ranges)]
        name = node.inputs[0]
        node = idx.producer.get(name)
    return None if ranges is None else (name, ranges)


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
    if len(pows) != 2:
        return None
    windows = [w for p in pows if (w := _window(g, idx, p.inputs[0])) is not None]
    if len(windows) != 2 or windows[0][0] != windows[1][0]:
        return None
    src, (a, b) = windows[0][0], (windows[0][1], windows[1][1])
    shape = g.tensors[src].shape
    differ = [d for d in range(len(shape)) if a[d] != b[d]]
    if len(differ) != 1:
        return None
    axis, n = differ[0], shape[differ[0]]
    if n % 2 or sorted((a[axis], b[axis])) != [(0, n // 2), (n // 2, n)]:
        return None
    source = merged_source(*pows, add, node)
    keep = [(0, n) if d == axis else a[d] for d in range(len(shape))]
    added, tensors = [], None
    if keep != [(0, dim) for dim in shape]:     # both halves also crop other axes alike (a frame dropped)
        crop = f"{node.outputs[0]}/stft_crop"
        tensors = {**g.tensors, crop: replace(g.tensors[src], name=crop, shape=tuple(hi - lo for lo, hi in keep))}
        added.append(Node(Op.SLICE, crop, (src,), (crop,), SliceAttrs(tuple(lo for lo, _ in keep),
                                                                      tuple(hi for _, hi in keep), (1,) * len(keep)),
                          source=source))
        src = crop
    added.append(Node(Op.MAGNITUDE, node.name, (src,), node.outputs, MagnitudeAttrs(axis), source=source))
    gone = {id(m) for m in (*pows, add)}
    nodes = [x for m in g.nodes if id(m) not in gone for x in (added if m is node else [m])]
    return g.with_nodes(nodes, tensors)


def fuse_magnitude(g: Graph) -> Graph:
    return apply_rules(g, [_fuse])

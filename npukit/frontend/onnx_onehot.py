"""ONNX-level rewrite of a one-hot matrix product into a row lookup, before conversion.

Exporters (jax2tf's `jax.nn.one_hot`, for one) spell an embedding as
    MatMul(Cast<float>(Equal(ids[..., 1] (Expand-ed or not), arange(K))), W[K, N])
which builds a [..., K] float one-hot on the host and multiplies it out. The same rows come
from Gather(W, ids): one indexed DMA on the NPU. The ids must provably have a last axis of 1
(a Reshape to a constant shape ending in 1, or an Unsqueeze of the last axis); that axis is
dropped by the rewrite and an Expand of the ids broadcasts the gathered rows the same way.

Out-of-range ids: the one-hot of an id outside [0, K) is a zero row, while the NPU's GATHER
stops the run with a one-line IndexRangeError (as the integer reference does). When the ids'
range is proven inside [0, K) (a Cast from a small unsigned type, or a Clip by constants on
their way) the two agree exactly; otherwise the rewritten model refuses what the original
would have mapped to a zero row: never a silently different answer (docs/transformers.md).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_fuse import GraphView

_FLOAT = onnx.TensorProto.FLOAT
_THROUGH = ("Reshape", "Squeeze", "Unsqueeze", "Flatten", "Identity")


def _arange_len(v: GraphView, name: str) -> int | None:
    """K if `name` is a constant integer arange(K) laid along its last axis."""
    c = v.consts.get(name)
    if c is None or c.dtype.kind not in "iu" or c.ndim == 0 or c.size != c.shape[-1]:
        return None
    return c.size if np.array_equal(c.ravel(), np.arange(c.size)) else None


def _rank(v: GraphView, name: str) -> int:
    """The rank declared for `name` (a graph input or annotated value), else 0."""
    for vi in (*v.graph.input, *v.graph.value_info):
        if vi.name == name and vi.type.tensor_type.HasField("shape"):
            return len(vi.type.tensor_type.shape.dim)
    return 0


def _last_axis_one(v: GraphView, x: str) -> tuple[list[onnx.NodeProto], str, np.ndarray | None, int] | None:
    """(nodes, ids source, new Reshape shape or None, rank of `x` or 1 if unknown) when `x` is
    ids with a last axis of 1 added by a Reshape to a constant shape or an Unsqueeze of the
    last axis."""
    n = v.producer.get(x)
    if n is not None and n.op_type == "Reshape":
        shape = v.consts.get(n.input[1])
        allow0 = next((a.i for a in n.attribute if a.name == "allowzero"), 0)
        if shape is not None and shape.ndim == 1 and shape.size >= 2 and shape[-1] == 1 and not allow0:
            return [n], n.input[0], shape[:-1].astype(np.int64), shape.size
    if n is not None and n.op_type == "Unsqueeze":
        axes = v.consts.get(n.input[1]) if len(n.input) > 1 else \
            next((np.array(a.ints) for a in n.attribute if a.name == "axes"), None)
        if axes is not None and axes.size == 1 and int(axes.ravel()[0]) == -1:
            return [n], n.input[0], None, _rank(v, n.input[0]) + 1
    return None


def _match(v: GraphView, mm: onnx.NodeProto):
    """(pattern nodes, table, ids source, reshape or None, expand shape or None) for a
    MatMul(Cast<float>(Equal(ids, arange K)), W[K, N])."""
    if mm.op_type != "MatMul" or mm.input[1] not in v.consts:
        return None
    w = v.consts[mm.input[1]]
    cast = v.node(mm.input[0], "Cast")
    if w.ndim != 2 or w.dtype.kind != "f" or cast is None or \
            next((a.i for a in cast.attribute if a.name == "to"), None) != _FLOAT:
        return None
    eq = v.node(cast.input[0], "Equal")
    if eq is None:
        return None
    for i in (0, 1):
        k = _arange_len(v, eq.input[1 - i])
        if k != w.shape[0]:
            continue
        x, nodes, expand = eq.input[i], [mm, cast, eq], None
        ex = v.node(x, "Expand")
        if ex is not None:
            nodes, x, expand = nodes + [ex], ex.input[0], ex.input[1]
        src = _last_axis_one(v, x)
        if src is None:
            continue
        more, ids, shape, rank = src
        if v.consts[eq.input[1 - i]].ndim > rank:     # the arange would add leading axes
            continue
        return nodes + more, mm.input[1], ids, shape, expand
    return None


def gather_one_hots(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with each one-hot matrix product replaced by a Gather of its table."""
    g = model.graph
    v = GraphView(g)
    opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    drop: set[int] = set()
    inits: list[onnx.TensorProto] = []
    position = {id(n): i for i, n in enumerate(g.node)}
    for mm in g.node:
        m = _match(v, mm)
        if m is None:
            continue
        nodes, table, ids, shape, expand = m
        out, name = mm.output[0], (mm.name or mm.output[0]) + "_gather"
        made = []
        if shape is not None:
            inits.append(numpy_helper.from_array(shape, name + "/ids_shape"))
            made.append(helper.make_node("Reshape", [ids, name + "/ids_shape"], [name + "/ids"], name=name + "/ids"))
            ids = name + "/ids"
        rows = name + "/rows" if expand else out
        made.append(helper.make_node("Gather", [table, ids], [rows], name=name, axis=0))
        if expand:          # the Expand's shape with its last axis 1: the rows broadcast as the ids did
            made += _broadcast(name, rows, expand, out, opset, inits)
        replaced[position[id(mm)]] = made      # in the MatMul's place
        drop |= _dead(v, nodes, position)
    if not replaced:
        return model
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    for i, n in enumerate(g.node):
        if i in replaced:
            result.graph.node.extend(replaced[i])
        elif i not in drop:
            result.graph.node.append(n)
    result.graph.initializer.extend(inits)
    return result


def _dead(v: GraphView, nodes: list[onnx.NodeProto], position: dict[int, int]) -> set[int]:
    """Positions of the pattern's nodes (the MatMul first) that only dead pattern nodes read."""
    dead = {id(nodes[0])}
    changed = True
    while changed:
        changed = False
        for n in nodes:
            reads = [sum(o in k.input for k in nodes if id(k) in dead) for o in n.output]
            if id(n) not in dead and any(reads) and all(v.uses.get(o, 0) == r for o, r in zip(n.output, reads)):
                dead.add(id(n))
                changed = True
    return {position[k] for k in dead}


def _broadcast(name: str, rows: str, expand: str, out: str, opset: int,
               inits: list[onnx.TensorProto]) -> list[onnx.NodeProto]:
    """Nodes for out = Expand(rows, Concat(expand[:-1], [1]))."""
    for suffix, value in (("/start", [0]), ("/end", [-1]), ("/one", [1])):
        inits.append(numpy_helper.from_array(np.array(value, np.int64), name + suffix))
    lead = helper.make_node("Slice", [expand, name + "/start", name + "/end"], [name + "/lead"], name=name + "/lead") \
        if opset >= 10 else helper.make_node("Slice", [expand], [name + "/lead"], name=name + "/lead",
                                             starts=[0], ends=[-1])
    return [lead,
            helper.make_node("Concat", [name + "/lead", name + "/one"], [name + "/shape"], name=name + "/shape",
                             axis=0),
            helper.make_node("Expand", [rows, name + "/shape"], [out], name=name + "/expand")]

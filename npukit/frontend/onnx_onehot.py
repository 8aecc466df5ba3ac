"""ONNX-level rewrite of a one-hot matrix product into a row lookup, before conversion.

Exporters (jax2tf's `jax.nn.one_hot`, for one) spell an embedding as
    MatMul(Cast<float>(Equal(ids[..., 1] (Expand-ed or not), arange(K))), W[K, N])
(or OneHot(ids, K, [0, 1]) and Gemm: alpha, transB and beta C folded in), which builds a
[..., K] float one-hot on the host and multiplies it out. The same rows come
from Gather(W, ids): one indexed DMA on the NPU. The ids must provably have a last axis of 1
(a Reshape to a constant shape ending in 1, or an Unsqueeze of the last axis); that axis is
dropped by the rewrite and an Expand of the ids broadcasts the gathered rows the same way.

Out-of-range ids: the one-hot of an id outside [0, K) is a zero row (OneHot wraps a
negative id in [-K, 0)), while the NPU's GATHER stops the run with a one-line
IndexRangeError, as the integer reference does. The range is not proven (Magika's ids are a
plain int32 input) and the NPU has no int32 arithmetic to clamp ids onto an extra zero row,
so ids in [0, K) give exactly the one-hot product and any other id is refused: never a
silently different answer (docs/transformers.md).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_fuse import GraphView, with_nodes

_FLOAT = onnx.TensorProto.FLOAT
_INTEGERS = (onnx.TensorProto.INT32, onnx.TensorProto.INT64)


def _arange_len(v: GraphView, name: str) -> int | None:
    """K if `name` is a constant integer arange(K) laid along its last axis."""
    c = v.consts.get(name)
    if c is None or c.dtype.kind not in "iu" or c.ndim == 0 or c.size != c.shape[-1]:
        return None
    return c.size if np.array_equal(c.ravel(), np.arange(c.size)) else None


def _declared(v: GraphView, name: str) -> onnx.TypeProto.Tensor | None:
    return next((vi.type.tensor_type for vi in (*v.graph.input, *v.graph.value_info) if vi.name == name), None)


def _rank(v: GraphView, name: str) -> int:
    """The rank declared for `name` (a graph input or annotated value), else 0."""
    t = _declared(v, name)
    return len(t.shape.dim) if t is not None and t.HasField("shape") else 0


def _integer(v: GraphView, name: str) -> bool:
    """Whether `name` is declared, or cast to, an integer type (OneHot also takes float ids)."""
    cast = v.node(name, "Cast")
    t = _declared(v, name)
    elem = _attr(cast, "to", 0) if cast is not None else t.elem_type if t is not None else 0
    return elem in _INTEGERS


def _last_axis_one(v: GraphView, x: str) -> tuple[list[onnx.NodeProto], str, np.ndarray | None, int] | None:
    """(nodes, ids source, new Reshape shape or None, rank of `x` or 1 if unknown) when `x` is
    ids with a last axis of 1 added by a Reshape to a constant shape or an Unsqueeze of the
    last axis."""
    n = v.producer.get(x)
    if n is not None and n.op_type == "Reshape" and _has(n, 2):
        shape = v.consts.get(n.input[1])
        allow0 = next((a.i for a in n.attribute if a.name == "allowzero"), 0)
        if shape is not None and shape.ndim == 1 and shape.size >= 2 and shape[-1] == 1 and not allow0:
            return [n], n.input[0], shape[:-1].astype(np.int64), shape.size
    if n is not None and n.op_type == "Unsqueeze" and _has(n, 1):
        axes = v.consts.get(n.input[1]) if len(n.input) > 1 else \
            next((np.array(a.ints) for a in n.attribute if a.name == "axes"), None)
        if axes is not None and axes.size == 1 and int(axes.ravel()[0]) == -1:
            return [n], n.input[0], None, _rank(v, n.input[0]) + 1
    return None


def _has(n: onnx.NodeProto, k: int) -> bool:
    """Has `n` its first `k` inputs (a malformed node is no match; the checker names it later)?"""
    return len(n.input) >= k and all(n.input[:k])


def _attr(n: onnx.NodeProto, name: str, default):
    a = next((a for a in n.attribute if a.name == name), None)
    return default if a is None else helper.get_attribute_value(a)


def _product(v: GraphView, mm: onnx.NodeProto) -> tuple[np.ndarray, str | None] | None:
    """(W [K, N], bias or None) of mm = A @ W [+ bias]: a MatMul by a constant, or a Gemm
    (A not transposed) by a constant with a constant C or an activation C of beta 1."""
    if mm.op_type not in ("MatMul", "Gemm") or not _has(mm, 2) or mm.input[1] not in v.consts:
        return None
    w = v.consts[mm.input[1]]
    if w.ndim != 2 or w.dtype.kind != "f":
        return None
    if mm.op_type == "MatMul":
        return w, None
    if _attr(mm, "transA", 0):
        return None
    w = (w.T if _attr(mm, "transB", 0) else w) * np.float32(_attr(mm, "alpha", 1.0))
    beta, c = _attr(mm, "beta", 1.0), mm.input[2] if len(mm.input) > 2 and mm.input[2] else None
    if c is not None and c not in v.consts and beta != 1.0:
        return None
    return w.astype(np.float32), c


def _one_hot(v: GraphView, a: str, k: int):
    """(nodes, ids, reshape or None, expand or None) when `a` is the float one-hot of ids over
    K = `k` along its last axis: Cast<float>(Equal(ids, arange K)) or [Cast](OneHot(ids, K, [0, 1]))."""
    cast = v.node(a, "Cast")
    if cast is not None and (_attr(cast, "to", None) != _FLOAT or not _has(cast, 1)):
        return None
    nodes, a = ([cast], cast.input[0]) if cast is not None else ([], a)
    oh = v.node(a, "OneHot")
    if oh is not None:
        if not _has(oh, 3):
            return None
        depth, values = v.consts.get(oh.input[1]), v.consts.get(oh.input[2])
        if depth is None or depth.size != 1 or int(depth.ravel()[0]) != k or values is None or \
                values.ravel().tolist() != [0, 1] or _attr(oh, "axis", -1) != -1 or not _integer(v, oh.input[0]):
            return None
        return nodes + [oh], oh.input[0], None, None
    eq = v.node(a, "Equal")
    if eq is None or cast is None or not _has(eq, 2):
        return None
    for i in (0, 1):
        if _arange_len(v, eq.input[1 - i]) != k:
            continue
        x, found, expand = eq.input[i], nodes + [eq], None
        ex = v.node(x, "Expand")
        if ex is not None:
            if not _has(ex, 2):
                continue
            found, x, expand = found + [ex], ex.input[0], ex.input[1]
        src = _last_axis_one(v, x)
        if src is None:
            continue
        more, ids, shape, rank = src
        if v.consts[eq.input[1 - i]].ndim > rank:     # the arange would add leading axes
            continue
        return found + more, ids, shape, expand
    return None


def _match(v: GraphView, mm: onnx.NodeProto):
    """(pattern nodes, table, bias or None, ids, reshape or None, expand or None) for
    MatMul / Gemm of a one-hot by a constant W[K, N]."""
    prod = _product(v, mm)
    hot = prod and _one_hot(v, mm.input[0], prod[0].shape[0])
    if not prod or not hot:
        return None
    nodes, ids, shape, expand = hot
    return [mm] + nodes, prod[0], prod[1], ids, shape, expand


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
        nodes, table, bias, ids, shape, expand = m
        out, name = mm.output[0], (mm.name or mm.output[0]) + "_gather"
        made = []
        inits.append(numpy_helper.from_array(table, name + "/table"))
        if shape is not None:
            inits.append(numpy_helper.from_array(shape, name + "/ids_shape"))
            made.append(helper.make_node("Reshape", [ids, name + "/ids_shape"], [name + "/ids"], name=name + "/ids"))
            ids = name + "/ids"
        rows = name + "/rows" if expand or bias else out
        made.append(helper.make_node("Gather", [name + "/table", ids], [rows], name=name, axis=0))
        if expand:          # the Expand's shape with its last axis 1: the rows broadcast as the ids did
            made += _broadcast(name, rows, expand, name + "/wide" if bias else out, opset, inits)
            rows = name + "/wide"
        if bias:            # Gemm's beta C
            if bias in v.consts:
                inits.append(numpy_helper.from_array(
                    (v.consts[bias] * np.float32(_attr(mm, "beta", 1.0))).astype(np.float32), name + "/bias"))
                bias = name + "/bias"
            made.append(helper.make_node("Add", [rows, bias], [out], name=name + "/bias"))
        replaced[position[id(mm)]] = made      # in the MatMul's place
        drop |= _dead(v, nodes, position)
    if not replaced:
        return model
    return with_nodes(model, (k for i, n in enumerate(g.node) for k in replaced.get(i, [] if i in drop else [n])),
                      inits)


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

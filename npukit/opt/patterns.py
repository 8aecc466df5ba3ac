"""Pattern passes: decomposed hard-swish -> HARD_SWISH, clamps fused into their producer."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..ir.graph import Clamp, Graph, Node, NoAttrs, Op
from ..kernels.float_exec import run_node
from .rewrite import Index, apply_rules, bypass, const, merged_source, replace_nodes, sole_consumer

# element-wise ops a hard-sigmoid chain may be built from (with a scalar constant operand)
_SCALAR_OPS = (Op.ADD, Op.SUB, Op.MUL, Op.MAXIMUM, Op.MINIMUM)
_PROBE = np.concatenate([np.linspace(-9.0, 9.0, 145), [-3.0, 3.0, -2.999, 2.999]]).astype(np.float32)


def _scalar_step(g: Graph, node: Node, x: str) -> bool:
    """A node applying a scalar function to `x` (x op scalar-constant, or a clamp of x)."""
    if node.op is Op.CLAMP:
        return node.inputs[0] == x
    if node.op not in _SCALAR_OPS or getattr(node.attrs, "act", None) is not None:
        return False
    c = const(g, node.inputs[1])
    return node.inputs[0] == x and c is not None and c.size == 1


def _chain_back(g: Graph, idx: Index, start: str, x: str) -> list[Node] | None:
    """Nodes of a single-consumer scalar chain computing `start` from `x`, in order."""
    chain: list[Node] = []
    t = start
    while t != x:
        node = idx.producer.get(t)
        if node is None or len(chain) > 8 or not node.inputs:
            return None
        if not _scalar_step(g, node, node.inputs[0]):
            return None
        if chain and sole_consumer(g, idx, t) is None:
            return None
        chain.append(node)
        t = node.inputs[0]
    return chain[::-1] if chain else None


def _gain_vs_hard_sigmoid(g: Graph, chain: list[Node]) -> float | None:
    """c when the chain computes c * relu6(x + 3) / 6 on every probe point, else None."""
    y = _PROBE
    for node in chain:
        ins = [y] + [np.asarray(g.tensors[t].data).reshape(()) for t in node.inputs[1:]]
        y = run_node(node, ins)
    target = np.clip(_PROBE + 3.0, 0.0, 6.0) / 6.0
    gain = float(y[-1] / target[-1]) if target[-1] else 0.0
    if gain == 0.0 or not np.allclose(y, gain * target, rtol=1e-5, atol=1e-6):
        return None
    return gain


def _hard_swish(g: Graph, node: Node, idx: Index) -> Graph | None:
    if node.op is not Op.MUL or node.attrs.act is not None or const(g, node.inputs[1]) is not None:
        return None
    for x, other in ((node.inputs[0], node.inputs[1]), (node.inputs[1], node.inputs[0])):
        if g.tensors[x].shape != g.tensors[node.outputs[0]].shape:
            continue
        chain = _chain_back(g, idx, other, x)
        if chain is None or sole_consumer(g, idx, other) is not node:
            continue
        gain = _gain_vs_hard_sigmoid(g, chain)
        if gain is None:
            continue
        removed = chain + [node]
        if abs(gain - 1.0) > 1e-5:
            # x * (c * hard_sigmoid(x)) followed by a multiply by 1 / c
            nxt = sole_consumer(g, idx, node.outputs[0])
            s = const(g, nxt.inputs[1]) if nxt is not None and nxt.op is Op.MUL else None
            if nxt is None or s is None or s.size != 1 or nxt.inputs[0] != node.outputs[0] or nxt.attrs.act is not None \
                    or abs(float(s.ravel()[0]) * gain - 1.0) > 1e-5:
                continue
            removed.append(nxt)
        out = removed[-1].outputs
        hs = Node(Op.HARD_SWISH, node.name, (x,), out, NoAttrs(), source=merged_source(*removed))
        return replace_nodes(g, removed, hs)
    return None


def fuse_hard_swish(g: Graph) -> Graph:
    return apply_rules(g, [_hard_swish])


_FUSES_ACT = (Op.CONV2D, Op.FULLY_CONNECTED, Op.ADD, Op.SUB, Op.MUL, Op.MAX_POOL, Op.AVG_POOL)


def _intersect(a: Clamp | None, b: Clamp) -> Clamp:
    if a is None:
        return b
    lo = [v for v in (a.lo, b.lo) if v is not None]
    hi = [v for v in (a.hi, b.hi) if v is not None]
    return Clamp(max(lo) if lo else None, min(hi) if hi else None)


def _fuse_clamp(g: Graph, node: Node, idx: Index) -> Graph | None:
    if node.op is not Op.CLAMP:
        return None
    prev = idx.producer.get(node.inputs[0])
    if prev is None or prev.op not in _FUSES_ACT or sole_consumer(g, idx, node.inputs[0]) is not node:
        return None
    clamp = node.attrs if isinstance(node.attrs, Clamp) else Clamp(0.0, None)
    act = _intersect(prev.attrs.act, clamp)
    if act.lo is not None and act.hi is not None and act.lo > act.hi:
        return None
    fused = prev.with_(outputs=node.outputs, attrs=replace(prev.attrs, act=act),
                       source=merged_source(prev, node))
    return replace_nodes(g, [prev, node], fused)


def _drop_noop_clamp(g: Graph, node: Node, idx: Index) -> Graph | None:
    if node.op is Op.CLAMP and isinstance(node.attrs, Clamp) and node.attrs.lo is None and node.attrs.hi is None:
        return bypass(g, node)
    return None


def fuse_activations(g: Graph) -> Graph:
    return apply_rules(g, [_drop_noop_clamp, _fuse_clamp])

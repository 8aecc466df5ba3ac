"""Graph rewriting helpers: use counts, node removal and rule-driven fixpoint rewriting."""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..ir.graph import DType, Graph, Node, Tensor


@dataclass(frozen=True)
class Index:
    """Producer / consumer lookups of one graph snapshot."""
    producer: dict[str, Node]
    consumers: dict[str, list[Node]]

    @staticmethod
    def of(g: Graph) -> "Index":
        producer: dict[str, Node] = {}
        consumers: dict[str, list[Node]] = {}
        for n in g.nodes:
            for t in n.outputs:
                producer[t] = n
            for t in n.inputs:
                consumers.setdefault(t, []).append(n)
        return Index(producer, consumers)


# A rule looks at one node and returns the rewritten graph, or None when it does not apply.
Rule = Callable[[Graph, Node, Index], "Graph | None"]


def apply_rules(g: Graph, rules: list[Rule]) -> Graph:
    """Apply rules until none fires. After a firing the scan resumes near the rewritten node;
    the fixpoint is confirmed by one full scan in which nothing fires."""
    start = 0
    while True:
        idx = Index.of(g)
        fired_at = None
        for i in range(start, len(g.nodes)):
            node = g.nodes[i]
            new = next((r for r in (rule(g, node, idx) for rule in rules) if r is not None), None)
            if new is not None:
                g, fired_at = new, i
                break
        if fired_at is None:
            if start == 0:
                return g
            start = 0
        else:
            start = max(0, fired_at - 1)


def const(g: Graph, name: str) -> np.ndarray | None:
    t = g.tensors.get(name)
    return None if t is None or not t.is_const else t.data


def sole_consumer(g: Graph, idx: Index, tensor: str) -> Node | None:
    """The only node reading `tensor`, when it is not also a graph output."""
    users = idx.consumers.get(tensor, [])
    if len(users) != 1 or tensor in g.outputs:
        return None
    return users[0]


def add_const(tensors: dict[str, Tensor], array: np.ndarray, base: str) -> str:
    name, i = base, 0
    while name in tensors:
        i += 1
        name = f"{base}_{i}"
    array = np.ascontiguousarray(array, dtype=np.float32)
    tensors[name] = Tensor(name, tuple(array.shape), DType.F32, array)
    return name


def rename_input(nodes, old: str, new: str) -> list[Node]:
    return [n.with_(inputs=tuple(new if t == old else t for t in n.inputs)) if old in n.inputs else n
            for n in nodes]


def replace_nodes(g: Graph, remove: list[Node], add: Node | None = None,
                  tensors: dict[str, Tensor] | None = None) -> Graph:
    """Drop `remove` and put `add` where the last removed node was (keeps topological order)."""
    ids = {id(n) for n in remove}
    last = max(i for i, n in enumerate(g.nodes) if id(n) in ids)
    nodes = []
    for i, n in enumerate(g.nodes):
        if id(n) not in ids:
            nodes.append(n)
        elif i == last and add is not None:
            nodes.append(add)
    return g.with_nodes(nodes, tensors)


def bypass(g: Graph, node: Node) -> Graph | None:
    """Remove a node whose output equals its first input; None when that is impossible."""
    x, y = node.inputs[0], node.outputs[0]
    others = [n for n in g.nodes if n is not node]
    if y not in g.outputs:
        return g.with_nodes(rename_input(others, y, x))
    # y is a graph output: the producer of x must take the name y instead
    if x in g.inputs or x in g.outputs or g.tensors[x].is_const:
        return None
    if g.tensors[x].shape != g.tensors[y].shape:
        return None
    renamed = [n.with_(outputs=tuple(y if t == x else t for t in n.outputs)) for n in others]
    return replace(g.with_nodes(rename_input(renamed, x, y)), ties=g.ties.renamed(x, y))


def merged_source(*nodes: Node) -> tuple[str, ...]:
    out: list[str] = []
    for n in nodes:
        out.extend(s for s in n.source if s not in out)
    return tuple(out)

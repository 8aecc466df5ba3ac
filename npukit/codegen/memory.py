"""Off-chip memory plan: activation arena by live ranges, and the constant image."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph, Op

ALIGN = 16


def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class Placement:
    space: int
    addr: int


@dataclass
class ConstImage:
    """Constants of one region, appended at `base` (after the arena when they share a region)."""
    space: int
    base: int
    data: bytearray = field(default_factory=bytearray)

    def add(self, array: np.ndarray) -> int:
        raw = np.ascontiguousarray(array).tobytes()
        self.data.extend(b"\0" * (_align(len(self.data)) - len(self.data)))
        addr = self.base + len(self.data)
        self.data.extend(raw)
        return addr

    @property
    def end(self) -> int:
        return self.base + len(self.data)


@dataclass(frozen=True)
class ArenaPlan:
    space: int
    size: int
    where: dict[str, Placement]


def alias_roots(g: Graph) -> dict[str, str]:
    """RESHAPE outputs share their input's bytes (same quantisation, same order)."""
    root: dict[str, str] = {}
    for node in g.nodes:
        if node.op is Op.RESHAPE:
            src = node.inputs[0]
            root[node.outputs[0]] = root.get(src, src)
    return root


def plan_arena(g: Graph, space: int) -> ArenaPlan:
    """First-fit offsets for every activation tensor over its live range [def, last use]."""
    root = alias_roots(g)
    first: dict[str, int] = {t: -1 for t in g.inputs}
    last: dict[str, int] = {}
    for i, node in enumerate(g.nodes):
        for t in node.outputs:
            first.setdefault(root.get(t, t), i)
        for t in node.inputs:
            if not g.tensors[t].is_const:
                last[root.get(t, t)] = i
    for t in g.outputs:
        last[root.get(t, t)] = len(g.nodes)
    for t in g.inputs:  # inputs must stay intact: a program may be run many times
        last[t] = len(g.nodes)
    live: list[tuple[int, int, int, int]] = []   # (start, end, offset, size)
    where: dict[str, Placement] = {}
    size = 0
    for t in sorted(first, key=lambda t: (first[t], -g.tensors[t].nbytes)):
        lo, hi, n = first[t], last.get(t, first[t]), _align(max(g.tensors[t].nbytes, 1))
        busy = sorted((o, o + s) for a, b, o, s in live if a <= hi and lo <= b)
        offset = 0
        for o, e in busy:
            if offset + n <= o:
                break
            offset = max(offset, e)
        live.append((lo, hi, offset, n))
        where[t] = Placement(space, offset)
        size = max(size, offset + n)
    for t, r in root.items():
        where[t] = where[r]
    return ArenaPlan(space, _align(size), where)

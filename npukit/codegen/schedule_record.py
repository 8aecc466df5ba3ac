"""What the schedule records beside its choices: each layer's lower bound (peak-rate compute,
least off-chip transfer) and the arena's placements, live ranges and aliases."""
from __future__ import annotations

import math

from ..ir.graph import Graph, Node, Op
from ..isa import instructions as I
from ..schedule.plan import ArenaPlan, Bound, TensorPlace
from .memory import ArenaPlan as Arena
from .partition import layer_macs, min_bytes, vpu_ops


def layer_bound(g: Graph, node: Node, arch, counted: set, interior: set) -> Bound:
    """Peak-rate compute (the best engine; a depthwise conv's MXU peak holds one channel per
    column) and minimal off-chip transfer cycles (each region has its own port)."""
    peak = arch.macs_per_cycle
    if node.op is Op.CONV2D and node.attrs.depthwise:
        taps = math.prod(g.tensors[node.inputs[1]].shape[1:3])
        peak = max(min(taps, arch.mxu.rows) * arch.mxu.cols, arch.vpu.lanes)
    compute = max(layer_macs(g, node) / peak, vpu_ops(g, node) / arch.vpu.lanes)
    _, per_region = min_bytes(g, node, arch, counted, interior)
    memory = max((n / arch.region_bytes_per_cycle(r) for r, n in per_region.items()), default=0)
    return Bound(int(math.ceil(compute)), int(math.ceil(memory)))


def arena_record(g: Graph, arch, arena: Arena, onchip_base: int, onchip: int) -> ArenaPlan:
    """The arena as the schedule records it (space names, live ranges, aliases)."""
    def space(sp: int) -> str:
        return "abuf" if sp == I.ABUF else arch.regions[sp - I.REGION0].name
    places = tuple(TensorPlace(t, space(p.space), p.addr, int(g.tensors[t].nbytes), *arena.ranges[t])
                   for t, p in arena.where.items() if t in arena.ranges)
    return ArenaPlan(space(arena.space), arena.size, onchip_base, onchip, places,
                     tuple(sorted(arena.aliases.items())))

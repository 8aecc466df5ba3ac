"""Whether a schedule fits the graph and the arch it is used with (a pinned one is not
trusted): fingerprints, placements, fusion groups, the arena and each layer's tiling kind.
Every problem is a one-line ScheduleError. Tile sizes are checked where they are emitted
(within the layer's extents; buffers that do not fit an SRAM are refused by its allocator)."""
from __future__ import annotations

from ..arch import Arch
from ..errors import ScheduleError
from ..ir.graph import Graph, Node, Op
from ..isa import instructions as I
from ..schedule.fused import FusedTiling
from ..schedule.plan import MatmulTiling, Schedule
from ..schedule.tiling import ConvTiling
from .fused import fusable_expansions, fusable_pairs
from .memory import ArenaPlan as Arena, Placement as Where
from .scheduler import Groups, _Scheduler


def check_schedule(sched: Schedule, g: Graph, arch: Arch, options) -> tuple[Groups, Arena]:
    """The fusion groups and the arena of `sched`, once it is known to fit `g` on `arch`."""
    if sched.arch_fingerprint != arch.fingerprint:
        raise ScheduleError(f"schedule was made for arch {sched.arch!r} ({sched.arch_fingerprint[:12]}), "
                            f"not for {arch.name!r} ({arch.fingerprint[:12]})")
    from ..schedule.plan import graph_fingerprint
    if sched.graph_fingerprint != graph_fingerprint(g):
        raise ScheduleError("schedule was made for another graph (its node names, operators or shapes differ)")
    names = [nd.name for nd in g.nodes]
    if [la.name for la in sched.layers] != names or [p.node for p in sched.placements] != names:
        raise ScheduleError(f"schedule's layers are not the graph's {len(names)} nodes in order")
    s = _Scheduler(g, arch, options)
    for p in sched.placements:
        want = "host" if s.reasons[p.node] else "npu"
        if p.target != want:
            raise ScheduleError(f"schedule places {p.node!r} on the {p.target}, but it runs on the {want}"
                                + (f" ({s.reasons[p.node]})" if want == "host" else ""))
    groups = _groups(sched, g, s)
    _check_layers(sched, g, groups)
    return groups, _arena(sched, g, arch, s.arena(groups), s)


def _groups(sched: Schedule, g: Graph, s: _Scheduler) -> Groups:
    on_npu = lambda nd: not s.reasons[nd.name]  # noqa: E731
    pairs = fusable_pairs(g, on_npu)
    exps = fusable_expansions(g, on_npu, pairs)
    by_name = {nd.name: nd for nd in g.nodes}
    groups: Groups = {}
    for f in sched.fusion:
        ok = f.kind == "pair" and len(f.nodes) == 2 or f.kind == "expansion" and len(f.nodes) == 3
        d = f.nodes[-2] if ok else ""
        if not ok or d not in pairs or pairs[d].name != f.nodes[-1] or d in groups or \
                (f.kind == "expansion" and (d not in exps or exps[d].name != f.nodes[0])):
            raise ScheduleError(f"schedule fuses {', '.join(f.nodes)} ({f.kind}), which cannot run fused")
        groups[d] = (by_name[f.nodes[-1]], exps[d] if f.kind == "expansion" else None)
    return groups


def _check_layers(sched: Schedule, g: Graph, groups: Groups) -> None:
    firsts = {(ex.name if ex else d) for d, (_, ex) in groups.items()}
    inner = {n for d, (pw, ex) in groups.items() for n in ([d] if ex else []) + [pw.name]}
    for la, p, node in zip(sched.layers, sched.placements, g.nodes):
        target = "fused" if la.name in inner else p.target
        if la.target != target:
            raise ScheduleError(f"schedule's layer {la.name!r} is marked {la.target}, not {target}")
        if la.buffers not in (1, 2):
            raise ScheduleError(f"schedule's layer {la.name!r}: {la.buffers} buffers (1 or 2)")
        want = _tiling_kind(node, target, la.name in firsts)
        if not isinstance(la.tiling, want or type(None)):
            raise ScheduleError(f"schedule's layer {la.name!r} needs "
                                f"{want.__name__ if want else 'no'} tiling, not {type(la.tiling).__name__}")


def _tiling_kind(node: Node, target: str, first: bool) -> type | None:
    if target != "npu":
        return None
    if first:
        return FusedTiling
    if node.op in (Op.CONV2D, Op.FULLY_CONNECTED):
        return ConvTiling
    return MatmulTiling if node.op is Op.MATMUL else None


def _arena(sched: Schedule, g: Graph, arch: Arch, expected: Arena, s: _Scheduler) -> Arena:
    """The schedule's arena as codegen places tensors: the tensors and live ranges the graph
    has, each in its space, aligned, inside its area, none overlapping another live at once."""
    a = sched.arena
    if a.region != arch.placement.activations or a.onchip_bytes != s.onchip \
            or a.onchip_base != arch.abuf_bytes - s.onchip:
        raise ScheduleError(f"schedule's arena ({a.region}, {a.onchip_bytes} resident bytes at {a.onchip_base}) "
                            f"does not match the arch and options ({arch.placement.activations}, "
                            f"{s.onchip} at {arch.abuf_bytes - s.onchip})")
    places = {p.tensor: p for p in a.tensors}
    if len(places) != len(a.tensors) or set(places) != set(expected.ranges) or dict(a.aliases) != expected.aliases:
        raise ScheduleError("schedule's arena does not place the graph's activation tensors")
    pinned = {expected.aliases.get(t, t) for t in (*s.host, *g.inputs, *g.outputs, *g.variables)}
    where: dict[str, Where] = {}
    spans: dict[int, list[tuple[int, int, int, int, str]]] = {}      # space -> (start, end, first, last, tensor)
    for t, p in places.items():
        if (p.first, p.last) != expected.ranges[t] or p.size != g.tensors[t].nbytes:
            raise ScheduleError(f"schedule's arena: tensor {t!r} has another size or live range than in the graph")
        if p.space == "abuf":
            lo, hi, space = a.onchip_base, a.onchip_base + a.onchip_bytes, I.ABUF
        elif p.space == a.region:
            lo, hi, space = 0, a.size, s.act_space
        else:
            raise ScheduleError(f"schedule's arena: tensor {t!r} in unknown space {p.space!r}")
        if p.offset % I.ALIGN or p.offset < lo or p.offset + p.size > hi or (space == I.ABUF and t in pinned):
            raise ScheduleError(f"schedule's arena: tensor {t!r} at {p.offset} (+{p.size} B) is outside "
                                f"its area in {p.space}")
        where[t] = Where(space, p.offset)
        spans.setdefault(space, []).append((p.offset, p.offset + max(p.size, 1), p.first, p.last, t))
    for items in spans.values():
        items.sort()
        for i, (o0, e0, f0, l0, t0) in enumerate(items):
            for o1, e1, f1, l1, t1 in items[i + 1:]:
                if o1 >= e0:
                    break
                if f0 <= l1 and f1 <= l0:
                    raise ScheduleError(f"schedule's arena: tensors {t0!r} and {t1!r} overlap while both live")
    for t, r in expected.aliases.items():
        where[t] = where[r]
    return Arena(s.act_space, a.size, where, {t: (p.first, p.last) for t, p in places.items()},
                 dict(expected.aliases))

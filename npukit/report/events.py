"""The timing model's per-instruction events, as the trace and the HTML report draw them: a lane
per engine, SRAM in use over time, off-chip bytes in flight, and the per-layer table rows."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from ..arch import Arch
from ..isa import instructions as I
from ..isa.program import Program
from ..cost.timing import Timeline, instruction_counts
from ..isa.ranges import SRAMS, accesses
from .profile import Profile

# display order and names of the engines' lanes
LANES = (I.Engine.DMA_IN, I.Engine.DMA_OUT, I.Engine.DMA_W, I.Engine.MXU, I.Engine.VPU, I.Engine.HOST)
LANE_NAMES = {I.Engine.DMA_IN: "DMA-in", I.Engine.DMA_OUT: "DMA-out", I.Engine.DMA_W: "weights",
              I.Engine.MXU: "MXU", I.Engine.VPU: "VPU", I.Engine.HOST: "host"}
SRAM_NAMES = {I.ABUF: "ABUF", I.WBUF: "WBUF", I.ACC: "ACC"}


@dataclass(frozen=True)
class Event:
    """One instruction on its engine, in cycles [start, end)."""
    index: int
    engine: I.Engine
    start: int
    end: int
    kind: str
    layer: int
    sram_bytes: int      # bytes moved in the SRAMs (a transfer's source and destination both count)
    offchip_bytes: dict  # region name -> bytes moved in that region
    macs: int


def events(prog: Program, arch: Arch, t: Timeline) -> list[Event]:
    counts = instruction_counts(prog, arch)
    return [Event(i, I.Engine(int(t.engine[i])), int(t.start[i]), int(t.end[i]), type(ins).__name__,
                  ins.layer, int(sum(c.sram_bytes.values())), {k: int(v) for k, v in c.region_bytes.items()},
                  int(c.macs))
            for i, (ins, c) in enumerate(zip(prog.instructions, counts))]


def step_series(changes: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    """A step function from (time, +/- amount) changes: its value after each distinct time."""
    acc = 0.0
    times: list[int] = []
    values: list[float] = []
    for time, delta in sorted(changes):
        acc += delta
        if times and times[-1] == time:
            values[-1] = acc
        else:
            times.append(time)
            values.append(acc)
    return times, [round(v, 6) for v in values]


def offchip_in_flight(evs: list[Event]) -> dict[str, tuple[list[int], list[float]]]:
    """Per region: bytes of the transfers in flight, a transfer's bytes spread over its span."""
    changes: dict[str, list] = {}
    for e in evs:
        for region, n in e.offchip_bytes.items():
            if n and e.end > e.start:
                changes.setdefault(region, []).extend(((e.start, n), (e.end, -n)))
    return {region: step_series(ch) for region, ch in changes.items()}


def _union(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def sram_in_use(prog: Program, t: Timeline) -> tuple[list[int], dict[str, list[int]]]:
    """Per SRAM over time: the bytes the layers in flight touch (the union of the ranges their
    transfers and operands cover; a layer is in flight from its first instruction's start to
    its last one's end)."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    ranges: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for ins, s, e in zip(prog.instructions, t.start, t.end):
        first[ins.layer] = min(first.get(ins.layer, s), s)
        last[ins.layer] = max(last.get(ins.layer, e), e)
        for space, lo, hi in accesses(ins):
            if space not in SRAMS:
                continue
            ranges.setdefault((ins.layer, space), []).append((lo, hi))
    merged = {key: _union(r) for key, r in ranges.items()}
    times = sorted({int(x) for x in (*first.values(), *last.values())})
    series: dict[str, list[int]] = {SRAM_NAMES[space]: [] for space in SRAMS}
    for time in times:      # the value holds from this time to the next
        live = [la for la in first if first[la] <= time < last[la]]
        for space in SRAMS:
            spans = _union([r for la in live for r in merged.get((la, space), ())])
            series[SRAM_NAMES[space]].append(sum(hi - lo for lo, hi in spans))
    return times, series


def aggregate(evs: list[Event], total_cycles: int, cap: int) -> list[dict]:
    """The events for drawing: each one as it is, or, beyond `cap` events, the events of one
    lane and one layer within a time bucket merged into one (the count, kinds and sums kept)."""
    width = 1 if len(evs) <= cap else max(1, math.ceil(total_cycles * len(LANES) / cap))
    groups: dict[tuple, list[Event]] = {}
    for e in evs:
        groups.setdefault((e.engine, e.layer, e.start // width if width > 1 else e.index), []).append(e)
    out = []
    for members in groups.values():
        kinds = Counter(m.kind for m in members)
        out.append({"lane": LANES.index(members[0].engine), "start": min(m.start for m in members),
                    "end": max(m.end for m in members), "layer": members[0].layer, "count": len(members),
                    "kind": ", ".join(k if n == 1 else f"{k} x{n}" for k, n in kinds.most_common()),
                    "first": members[0].index,
                    "bytes": sum(m.sram_bytes + sum(m.offchip_bytes.values()) for m in members),
                    "macs": sum(m.macs for m in members)})
    return sorted(out, key=lambda r: (r["start"], r["lane"]))


def noise_rows(sqnr: list, meta: dict) -> list[dict]:
    """The per-layer noise report as JSON rows, worst first ({"layer", "op", "sqnr_db"}; None:
    computed exactly): the compiled model's own, or the one stored in its binary."""
    return [s.to_json() for s in sqnr] or [dict(r) for r in meta.get("sqnr") or []]


def layer_rows(prog: Program, p: Profile, macs_per_cycle: int, noise: list[dict]) -> list[dict]:
    """The per-layer table: one row per profile layer (Vela-style columns)."""
    sqnr = {r["layer"]: r["sqnr_db"] for r in noise}
    rows = []
    for i, (la, lp) in enumerate(zip(p.layers, prog.layers)):
        rows.append({
            "index": i, "name": la.name, "op": la.op, "target": la.target, "reason": lp.reason,
            "macs": la.macs, "cycles": la.cycles,
            "util_pct": round(100 * la.macs / (macs_per_cycle * la.cycles), 3) if la.cycles else 0.0,
            "network_pct": round(100 * la.cycles / p.total_cycles, 3) if p.total_cycles else 0.0,
            "mxu_cycles": la.mxu_cycles, "vpu_cycles": la.vpu_cycles, "dma_cycles": la.dma_cycles,
            "roofline_cycles": la.roofline_cycles, "bound": la.bound,
            "achieved_over_bound": round(la.cycles / la.roofline_cycles, 4) if la.roofline_cycles else None,
            "offchip_bytes": la.dram_bytes, "energy_uj": round(la.energy_uj, 6),
            "sqnr_db": _first(sqnr, [la.name, *la.nodes]), "tiling": la.detail.get("tiling", ""),
            "nodes": " ".join(la.nodes)})
    return rows


def _first(sqnr: dict[str, float | None], nodes: list[str]) -> float | None:
    """The noise of a layer: that of the first of its graph nodes the noise report names."""
    for node in nodes:
        if node in sqnr:
            value = sqnr[node]
            return None if value is None else round(value, 3)
    return None

"""The profile: per-layer and network cycles, bounds, traffic, energy and area (schema'd JSON)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..arch import Arch
from ..arch import area_mm2, energy_table
from ..isa import instructions as I
from ..isa.program import Program
from ..isa.ranges import SRAMS, accesses
from ..cost.timing import Timeline, layer_cycles
from .breakdown import breakdown

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class LayerProfile:
    name: str
    op: str
    nodes: list[str]
    target: str
    macs: int
    cycles: int
    mxu_cycles: int
    vpu_cycles: int
    dma_cycles: int
    dram_bytes: int
    roofline_cycles: int
    bound: str
    efficiency: float      # roofline / achieved (1.0 = at the bound)
    energy_uj: float
    detail: dict           # notes for people: "tiling", the tiling in words
    tiling: dict = field(default_factory=dict)   # the schedule's tiling: {"kind": conv | fused | matmul, ...}


@dataclass(frozen=True)
class Profile:
    schema_version: int
    arch: str
    clock_mhz: float
    total_cycles: int
    latency_ms: float
    macs: int
    dram_bytes: int
    region_bytes: dict
    energy_uj: float
    energy_breakdown_uj: dict
    area_mm2: dict
    roofline_cycles: int
    roofline_ratio: float   # achieved / bound
    utilisation: float      # MACs / (peak MACs per cycle x cycles)
    sram_peak_bytes: int
    image_bytes: dict
    host_ops: list
    instructions: int
    layers: list[LayerProfile]
    weight_bytes: int = 0              # constant blocks loaded into WBUF (weights, params, tables), decoded
    weight_bytes_compressed: int = 0   # the same blocks as stored in the image (wcodec streams where smaller)
    breakdown: list = field(default_factory=list)   # cycles by kind of operator (report.breakdown)

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        from .tables import profile_table
        return profile_table(self)


def _roofline(layer, arch: Arch) -> int:
    """max(MACs / peak of the best engine, VPU work / lanes, minimal off-chip bytes / bandwidth)."""
    peak = arch.macs_per_cycle
    taps = layer.depthwise_taps
    if taps:     # depthwise: the MXU holds one channel per column, the taps down its rows
        peak = max(min(int(taps), arch.mxu.rows) * arch.mxu.cols, arch.vpu.lanes)
    compute = layer.macs / peak
    vpu = layer.vpu_ops / arch.vpu.lanes
    # each region has its own port: the slowest region's share bounds the layer
    memory = max((n / arch.region_bytes_per_cycle(r) for r, n in layer.min_region_bytes.items()), default=0)
    return int(math.ceil(max(compute, vpu, memory)))


def build_profile(prog: Program, arch: Arch, t: Timeline) -> Profile:
    et = energy_table(arch)
    busy = np.zeros((len(prog.layers), len(I.Engine)), np.int64)
    for ins, engine, work in zip(prog.instructions, t.engine, t.busy):
        busy[ins.layer, engine] += work
    per_layer = layer_cycles(prog, t)
    layers, energy = [], {"mac": 0.0, "sram": 0.0, "offchip": 0.0, "vpu": 0.0, "host": 0.0}
    for i, layer in enumerate(prog.layers):
        c = t.counts[i]
        cycles = int(per_layer[i])
        e_mac, e_sram, e_off, e_vpu, e_host = c.energy_pj(et, arch.host.pj_per_cycle)
        for k, v in zip(energy, (e_mac, e_sram, e_off, e_vpu, e_host)):
            energy[k] += v
        roof = _roofline(layer, arch)
        dma = int(busy[i, I.Engine.DMA_IN] + busy[i, I.Engine.DMA_OUT] + busy[i, I.Engine.DMA_W])
        mxu, vpu = int(busy[i, I.Engine.MXU]), int(busy[i, I.Engine.VPU])
        layers.append(LayerProfile(
            layer.name, layer.op, list(layer.nodes), layer.target, layer.macs, cycles, mxu, vpu, dma,
            int(sum(c.region_bytes.values())), roof, _bound(layer.target, cycles, mxu, vpu, dma),
            round(roof / cycles, 4) if cycles else 1.0, (e_mac + e_sram + e_off + e_vpu + e_host) * 1e-6, layer.detail,
            layer.tiling))
    total = int(t.total_cycles)
    macs = sum(layer.macs for layer in prog.layers)
    roof_total = sum(layer.roofline_cycles for layer in layers)
    region_bytes: dict[str, int] = {}
    for c in t.counts:
        for k, v in c.region_bytes.items():
            region_bytes[k] = region_bytes.get(k, 0) + int(v)
    static = et.static_mw * 1e-3 * total / (arch.clock_mhz * 1e6) * 1e6
    energy_uj = {k: v * 1e-6 for k, v in energy.items()} | {"static": static}
    return Profile(
        SCHEMA_VERSION, arch.name, arch.clock_mhz, total, total / (arch.clock_mhz * 1e3), macs,
        sum(region_bytes.values()), region_bytes, float(sum(energy_uj.values())), energy_uj, area_mm2(arch),
        roof_total, round(total / roof_total, 4) if roof_total else 1.0,
        round(macs / (arch.macs_per_cycle * total), 4) if total else 0.0, _sram_peak(prog, arch),
        {r.name: len(r.image) for r in prog.regions},
        [{"name": la.name, "op": la.op, "reason": la.reason, "node": la.nodes[0] if la.nodes else la.name}
         for la in prog.layers if la.target == "host"],
        len(prog.instructions), layers, *weight_block_bytes(prog), breakdown(layers, total))


def weight_block_bytes(prog: Program) -> tuple[int, int]:
    """(decoded, stored) bytes of the distinct constant blocks DMAed from a region into WBUF."""
    blocks = {}
    for ins in prog.instructions:
        if isinstance(ins, I.Dma) and ins.dst_space == I.WBUF and ins.src_space >= I.REGION0:
            raw = math.prod(ins.shape) * ins.elem
            blocks[ins.src_space, ins.src] = (raw, ins.packed if ins.codec else raw)
    return sum(r for r, _ in blocks.values()), sum(s for _, s in blocks.values())


def _bound(target: str, cycles: int, mxu: int, vpu: int, dma: int) -> str:
    if target == "host":
        return "host"
    top = max(mxu, vpu, dma)
    if cycles == 0 or top < 0.5 * cycles:
        return "overhead"
    return {mxu: "compute", vpu: "vpu", dma: "memory"}[top]


def _sram_peak(prog: Program, arch: Arch) -> int:
    """Highest byte touched in each SRAM, summed: the on-chip arena actually used."""
    top = dict.fromkeys(SRAMS, 0)
    for ins in prog.instructions:
        for space, _, end in accesses(ins):
            if space in top:
                top[space] = max(top[space], end)
    return int(sum(top.values()))

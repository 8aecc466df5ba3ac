"""Technology table: energy per action and area per unit, each number with its public source.

The timing model multiplies action counts (MACs, buffer bytes, VPU ops, off-chip bytes) by
`energy_table(arch)`; `area_mm2(arch)` gives a first-order area breakdown. Every value can be
overridden in the arch config's `[tech]` table. docs/architecture.md lists the derivations.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Mapping

from npukit.errors import ArchError

if TYPE_CHECKING:  # pragma: no cover
    from npukit.arch.config import Arch

KEYNOTE = 'ISSCC 2014 keynote "Computing\'s energy problem (and what we can do about it)", 45 nm, 0.9 V'
EYERISS = 'ISCA 2016 "Eyeriss: A Spatial Architecture for Energy-Efficient Dataflow for CNNs", normalised energy costs'
INTEL45 = 'IEDM 2007 "A 45nm Logic Technology with High-k+Metal Gate Transistors, Strained Silicon, ..."'
FGDRAM = 'MICRO 2017 "Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems"'
ASSUMED = "npukit assumption (no public source; override it in [tech])"


@dataclass(frozen=True)
class TechNode:
    """Raw per-unit numbers for one process node (pJ per action, um^2 per unit)."""

    node: str
    pj_int8_mult: float
    pj_int32_add: float
    pj_int32_mult: float
    # (SRAM size in KiB, pJ per byte read or written) points; interpolated in log2(size).
    sram_points: tuple[tuple[float, float], ...]
    rf_access_vs_mac: float
    um2_int8_mult: float
    um2_int32_add: float
    um2_int32_mult: float
    um2_sram_bitcell: float
    sram_array_efficiency: float
    sources: Mapping[str, str] = field(default_factory=dict)


NODE_45NM = TechNode(
    node="45nm",
    pj_int8_mult=0.2,        # keynote: 8b int multiply 0.2 pJ
    pj_int32_add=0.1,        # keynote: 32b int add 0.1 pJ
    pj_int32_mult=3.1,       # keynote: 32b int multiply 3.1 pJ
    # keynote: 64-bit SRAM access 10 pJ (8 KB), 20 pJ (32 KB), 100 pJ (1 MB) -> per byte /8
    sram_points=((8.0, 10.0 / 8), (32.0, 20.0 / 8), (1024.0, 100.0 / 8)),
    rf_access_vs_mac=1.0,    # Eyeriss: register file access ~1x the ALU (MAC) energy
    um2_int8_mult=282.0,     # keynote: 8b multiply 282 um^2
    um2_int32_add=137.0,     # keynote: 32b add 137 um^2
    um2_int32_mult=3495.0,   # keynote: 32b multiply 3495 um^2
    um2_sram_bitcell=0.346,  # Intel 45 nm 6T SRAM cell 0.346 um^2
    sram_array_efficiency=0.7,  # assumed: cells are 70 % of a macro (decoders, sense amps)
    sources=MappingProxyType({
        "pj_int8_mult": KEYNOTE, "pj_int32_add": KEYNOTE, "pj_int32_mult": KEYNOTE,
        "sram_points": KEYNOTE, "rf_access_vs_mac": EYERISS,
        "um2_int8_mult": KEYNOTE, "um2_int32_add": KEYNOTE, "um2_int32_mult": KEYNOTE,
        "um2_sram_bitcell": INTEL45, "sram_array_efficiency": ASSUMED,
    }),
)

NODES: Mapping[str, TechNode] = MappingProxyType({NODE_45NM.node: NODE_45NM})
DEFAULT_NODE = NODE_45NM.node

# Off-chip energy per byte by region kind (pJ/B). Independent of the NPU's process node.
REGION_KIND_PJ_PER_BYTE: Mapping[str, float] = MappingProxyType({
    "dram": 1300.0 / 8,  # keynote: DRAM 1.3-2.6 nJ per 64-bit access; lower end
    "hbm": 4.0 * 8,      # FGDRAM: HBM2 at about 4 pJ/bit
    "sram": 100.0 / 8,   # keynote: 1 MB SRAM, 100 pJ per 64-bit access (system SRAM)
    "flash": 1300.0 / 8,  # assumed: off-chip flash costed like an off-chip DRAM access
})
REGION_KIND_SOURCES: Mapping[str, str] = MappingProxyType(
    {"dram": KEYNOTE, "hbm": FGDRAM, "sram": KEYNOTE, "flash": ASSUMED}
)
REGION_KINDS = tuple(REGION_KIND_PJ_PER_BYTE)


def tech_node(node: str) -> TechNode:
    if node not in NODES:
        raise ArchError(f"tech.node: unknown process node {node!r} (known: {', '.join(NODES)})")
    return NODES[node]


def region_kind_pj_per_byte(kind: str) -> float:
    if kind not in REGION_KIND_PJ_PER_BYTE:
        raise ArchError(f"regions.kind: unknown kind {kind!r} (known: {', '.join(REGION_KINDS)})")
    return REGION_KIND_PJ_PER_BYTE[kind]


def sram_pj_per_byte(node: TechNode, size_kib: float) -> float:
    """Access energy of an SRAM macro of `size_kib`: log-linear between the cited points,
    clamped below the smallest point and extrapolated above the largest (never decreasing)."""
    pts = node.sram_points
    if size_kib <= pts[0][0]:
        return pts[0][1]
    x = math.log2(size_kib)
    for (s0, e0), (s1, e1) in zip(pts, pts[1:]):
        if size_kib <= s1:
            t = (x - math.log2(s0)) / (math.log2(s1) - math.log2(s0))
            return e0 + t * (e1 - e0)
    (s0, e0), (s1, e1) = pts[-2], pts[-1]
    slope = (e1 - e0) / (math.log2(s1) - math.log2(s0))
    return e1 + slope * (x - math.log2(s1))


@dataclass(frozen=True)
class EnergyTable:
    """Energy per action for one arch; multiply by action counts."""

    pj_per_mac: float          # int8 x int8 multiply + int32 accumulate
    pj_per_int32_add: float
    pj_per_abuf_byte: float    # read or write of one byte
    pj_per_wbuf_byte: float
    pj_per_acc_byte: float
    pj_per_vpu_op: float       # one simple int32 lane op (add, min, max, shift, compare)
    pj_per_vpu_mul: float      # one int32 lane multiply (requantise, doubling high multiply)
    pj_per_rf_access: float
    pj_per_region_byte: Mapping[str, float]
    static_mw: float = 0.0     # leakage; 0 unless the config gives it


def _bank_kib(size_kib: float, banks: int) -> float:
    return size_kib / banks


def energy_table(arch: "Arch") -> EnergyTable:
    node = tech_node(arch.tech.node)
    t = arch.tech
    mac = t.pj_per_mac if t.pj_per_mac is not None else node.pj_int8_mult + node.pj_int32_add

    def sram(size_kib: float) -> float:
        if t.sram_pj_per_byte is not None:
            return t.sram_pj_per_byte
        return sram_pj_per_byte(node, _bank_kib(size_kib, arch.sram.banks))

    return EnergyTable(
        pj_per_mac=mac,
        pj_per_int32_add=node.pj_int32_add,
        pj_per_abuf_byte=sram(arch.sram.abuf_kib),
        pj_per_wbuf_byte=sram(arch.sram.wbuf_kib),
        pj_per_acc_byte=sram(arch.sram.acc_kib),
        pj_per_vpu_op=t.pj_per_vpu_op if t.pj_per_vpu_op is not None else node.pj_int32_add,
        pj_per_vpu_mul=t.pj_per_vpu_mul if t.pj_per_vpu_mul is not None else node.pj_int32_mult,
        pj_per_rf_access=(t.pj_per_rf_access if t.pj_per_rf_access is not None
                          else node.rf_access_vs_mac * mac),
        pj_per_region_byte=MappingProxyType(
            {r.name: r.energy_pj_per_byte for r in arch.regions}),
        static_mw=t.static_mw,
    )


def mm2_per_sram_kib(arch: "Arch") -> float:
    t = arch.tech
    if t.mm2_per_sram_kib is not None:
        return t.mm2_per_sram_kib
    node = tech_node(t.node)
    return 8192 * node.um2_sram_bitcell / node.sram_array_efficiency * 1e-6


def area_mm2(arch: "Arch") -> dict[str, float]:
    """First-order area: MAC array, VPU lanes and the three scratchpads (no wiring, no control)."""
    node = tech_node(arch.tech.node)
    t = arch.tech
    um2_mac = t.um2_per_mac if t.um2_per_mac is not None else node.um2_int8_mult + node.um2_int32_add
    um2_lane = (t.um2_per_vpu_lane if t.um2_per_vpu_lane is not None
                else node.um2_int32_mult + node.um2_int32_add)
    sram_kib = arch.sram.abuf_kib + arch.sram.wbuf_kib + arch.sram.acc_kib
    parts = {
        "mxu": arch.macs_per_cycle * um2_mac * 1e-6,
        "vpu": arch.vpu.lanes * um2_lane * 1e-6,
        "sram": sram_kib * mm2_per_sram_kib(arch),
    }
    parts["total"] = sum(parts.values())
    return parts

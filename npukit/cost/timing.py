"""Event-driven timing of a Program: engines run concurrently, ordered only by dependency tokens.

Each engine executes its instructions in program order; an instruction starts when its
engine is free and every instruction it waits on has finished. Latencies are the closed
forms of npukit.cost.costs. Action counts (MACs, SRAM and off-chip bytes, VPU ops) feed
the energy estimate.
"""
from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from operator import attrgetter

import numpy as np

from ..arch import Arch
from ..isa import instructions as I
from ..isa.program import Program
from . import costs

SRAM_BYTES_PER_CYCLE = costs.SRAM_BYTES_PER_CYCLE
SOFTMAX_OPS_PER_ELEMENT = 6   # max, subtract and rescale, exp, sum, reciprocal, scale
# by SOFTMAX phase (isa): a whole row's; a chunk's max; its sum (subtract and rescale, exp, sum);
# its outputs (subtract and rescale, exp again, reciprocal, scale): 8 per element over the passes
SOFTMAX_PHASE_OPS = (SOFTMAX_OPS_PER_ELEMENT, 1, 1, 3, 4)
SIGMOID16_OPS_PER_ELEMENT = 3
LUT16_OPS_PER_ELEMENT = 2      # the anchor pair, the interpolation
MAGNITUDE_OPS_PER_ELEMENT = 4  # two squares, the add and scale, the integer square root (one op, pipelined)
LAYER_NORM_OPS_PER_ELEMENT = 6  # pass 1: sum, sum of squares; pass 2: n x - sum, divide by sigma, x gamma + beta, requantise
LAYER_NORM_OPS_PER_ROW = 33     # the variance's division by n, a 32-step integer square root
LSTM_CELL_OPS_PER_CELL = 40    # per cell: 4 gates x (2 requantisations, saturating add) = 12, 3 logistic and
                               # 2 tanh as pipelined fixed-point units (~4 each, as SIGMOID16's) = 20, the
                               # cell's 2 products, add and clip, the hidden product and requantisation
LSTM_PEEPHOLE_OPS_PER_CELL = 6  # 3 gates x (product and requantisation, saturating add)
GRU_CELL_OPS_PER_CELL = (14, 28, 8, 5)  # by mode; 0: 2 gates x (2 requantisations, saturating add) = 6, 2
                               # logistic (~4 each) = 8; 1: those, the n gate's 2 requantisations, reset product
                               # and add, its tanh = 20, the hidden update's 2 products, requantisation, adds = 8;
                               # RNN: 2 requantisations and the add, tanh (~4) or relu (1), the hidden's = 8 / 5
HOST_CLASS = {"conv2d": "conv", "fully_connected": "conv", "add": "eltwise", "sub": "eltwise", "mul": "eltwise",
              "maximum": "eltwise", "minimum": "eltwise", "sigmoid": "lut", "tanh": "lut", "hard_swish": "lut",
              "leaky_relu": "lut", "clamp": "lut", "prelu": "eltwise", "max_pool": "pool", "avg_pool": "pool",
              "mean": "reduce", "softmax": "softmax", "reshape": "copy", "transpose": "copy", "concat": "copy",
              "pad": "copy", "slice": "copy", "resize": "copy", "magnitude": "eltwise", "lstm": "conv",
              "gru": "conv"}


@dataclass
class Counts:
    macs: int = 0
    vpu_ops: int = 0
    sram_bytes: dict = field(default_factory=partial(defaultdict, int))    # space -> bytes
    region_bytes: dict = field(default_factory=partial(defaultdict, int))  # region name -> bytes
    host_elements: int = 0
    host_cpu_cycles: float = 0.0

    def energy_pj(self, et, host_pj_per_cycle: float) -> tuple[float, float, float, float, float]:
        """Dynamic energy of these actions by the technology table `et` (arch.tech.energy_table):
        (MACs, SRAM, off-chip, VPU, host) in pJ."""
        sram = (self.sram_bytes.get(I.ABUF, 0) * et.pj_per_abuf_byte + self.sram_bytes.get(I.WBUF, 0) * et.pj_per_wbuf_byte
                + self.sram_bytes.get(I.ACC, 0) * et.pj_per_acc_byte)
        offchip = sum(b * et.pj_per_region_byte[name] for name, b in self.region_bytes.items())
        return (self.macs * et.pj_per_mac, sram, offchip, self.vpu_ops * et.pj_per_vpu_op,
                self.host_cpu_cycles * host_pj_per_cycle)


@dataclass
class Timeline:
    start: np.ndarray
    end: np.ndarray
    engine: np.ndarray
    busy: np.ndarray          # cycles of each instruction's own work (its span less the issue overhead)
    counts: list[Counts]      # per layer
    total_cycles: int


class _Model:
    def __init__(self, prog: Program, arch: Arch):
        self.arch = arch
        self.region_names = {r.space: r.name for r in prog.regions}
        for i, r in enumerate(arch.regions):
            self.region_names.setdefault(I.REGION0 + i, r.name)
        rows, cols = arch.mxu.rows, arch.mxu.cols
        self.rows, self.cols, self.overlap = rows, cols, arch.mxu.fold_overlap
        self.lanes, self.depth = arch.vpu.lanes, arch.vpu.pipeline_depth
        self.transfers: dict[tuple[int, int, int, int], tuple[int, int]] = {}

    def _transfer(self, space: int, nbytes: int, runs: int, run: int) -> tuple[int, int]:
        """(fixed cycles: setup + latency, cycles the space's port is occupied)."""
        key = (space, nbytes, runs, run)
        got = self.transfers.get(key)
        if got is None:
            if space < I.REGION0:
                got = costs.DMA_SETUP_CYCLES, math.ceil(nbytes / SRAM_BYTES_PER_CYCLE)
            else:
                name = self.arch.region(self.region_names[space]).name
                got = costs.dma_cycles(nbytes, runs, run, self.arch.region_bytes_per_cycle(name),
                                       self.arch.region_latency_cycles(name))
            self.transfers[key] = got     # programs repeat transfers: each is worked out once
        return got

    def charge(self, ins: I.Instr) -> tuple:
        """What the event loop needs of a non-host instruction, which its `_key` fixes: (engine,
        latency without the issue overhead, port uses, the longest port use, MACs, VPU ops, SRAM
        bytes by space, off-chip bytes by region name; the counts in the order `latency` makes them)."""
        c = Counts()
        lat, uses = self.latency(ins, c), tuple(self.port_use(ins))
        return (int(I.engine_of(ins)), lat, uses, max((port for _, _, port in uses), default=0), c.macs, c.vpu_ops,
                tuple(c.sram_bytes.items()), tuple(c.region_bytes.items()))

    def port_use(self, ins: I.Instr) -> list[tuple[int, int, int]]:
        """(port, fixed cycles, port cycles) of a DMA or fill: one per off-chip region it
        touches, or the on-chip copy path (port -1) when it stays inside the SRAMs."""
        if isinstance(ins, I.Dma) and ins.codec:
            # the compressed stream in one run from its region; the decoder (port -2) expands it
            raw = math.prod(ins.shape) * ins.elem
            decode = (-2, costs.DMA_SETUP_CYCLES, math.ceil(raw / self.arch.dma.decode_bytes_per_cycle))
            src = ins.src_space if ins.src_space >= I.REGION0 else -1
            uses = [(src, *self._transfer(ins.src_space, ins.packed, 1, ins.packed)), decode]
            if ins.dst_space >= I.REGION0:      # decoded into off-chip memory (not what codegen emits)
                uses.append((ins.dst_space, *self._transfer(ins.dst_space, raw, 1, raw)))
            return uses
        if isinstance(ins, I.Dma):
            runs = math.prod(ins.shape)
            spaces = [s for s in (ins.src_space, ins.dst_space) if s >= I.REGION0] or [-1]
            return [(space, *self._transfer(space, runs * ins.elem, runs, ins.elem)) for space in spaces]
        if isinstance(ins, I.Fill):
            space = ins.space if ins.space >= I.REGION0 else -1
            return [(space, *self._transfer(space, ins.n, 1, ins.n))]
        if isinstance(ins, I.Gather):
            return self._gather_use(ins)
        return []

    def _gather_use(self, g: I.Gather) -> list[tuple[int, int, int]]:
        """The ids in one run; once they are in, one descriptor per table row (each row its
        own burst-rounded run, descriptors issued back to back), the rows written out as they
        arrive. Off-chip regions' ports are booked, as a DMA's (the on-chip path when none)."""
        ids, nbytes = g.n * g.id_bytes, g.n * g.row_bytes
        f_ids, p_ids = self._transfer(g.ids_space, ids, 1, ids)
        f_src, p_src = self._transfer(g.src_space, nbytes, g.n, g.row_bytes)
        f_dst, p_dst = self._transfer(g.dst_space, nbytes, 1, nbytes)
        lead = f_ids + p_ids
        rows = max(p_src, g.n * costs.DMA_SETUP_CYCLES)
        phases = [(g.ids_space, f_ids, p_ids), (g.src_space, lead + f_src, rows),
                  (g.dst_space, lead + f_src + f_dst, p_dst)]
        return [p for p in phases if p[0] >= I.REGION0] or [(-1, lead + f_src, rows)]

    def _count(self, c: Counts, space: int, n: int) -> None:
        """Bytes a transfer moves in `space`: an off-chip region's count or an SRAM's."""
        if space >= I.REGION0:
            c.region_bytes[self.region_names[space]] += n
        else:
            c.sram_bytes[space] += n

    def latency(self, ins: I.Instr, c: Counts) -> int:
        if isinstance(ins, I.Dma) and ins.codec:     # reads the stream, writes the decoded bytes
            raw = math.prod(ins.shape) * ins.elem
            self._count(c, ins.src_space, ins.packed)
            self._count(c, ins.dst_space, raw)
            return sum(self._transfer(ins.src_space, ins.packed, 1, ins.packed))
        if isinstance(ins, I.Dma):
            runs = math.prod(ins.shape)
            nbytes = runs * ins.elem
            self._count(c, ins.src_space, nbytes)
            self._count(c, ins.dst_space, nbytes)
            return max(sum(self._transfer(ins.src_space, nbytes, runs, ins.elem)),
                       sum(self._transfer(ins.dst_space, nbytes, runs, ins.elem)))
        if isinstance(ins, I.Fill):
            self._count(c, ins.space, ins.n)
            return sum(self._transfer(ins.space, ins.n, 1, ins.n))
        if isinstance(ins, I.Gather):
            self._count(c, ins.ids_space, ins.n * ins.id_bytes)
            self._count(c, ins.src_space, ins.n * ins.row_bytes)
            self._count(c, ins.dst_space, ins.n * ins.row_bytes)
            return max(f + p for _, f, p in self._gather_use(ins))
        if isinstance(ins, I.Conv):     # an int16 input is two int8 passes (hi and lo byte)
            e, taps, passes = ins.out_h * ins.out_w, ins.kernel[0] * ins.kernel[1], ins.in_bytes
            c.macs += passes * e * ins.k * taps * ins.c_len
            c.sram_bytes[I.ABUF] += passes * ins.in_h * ins.in_w * ins.c_len
            c.sram_bytes[I.WBUF] += passes * ins.k * taps * ins.c_len
            c.sram_bytes[I.ACC] += 4 * e * ins.k * (passes + 1 if ins.accumulate else passes)
            return passes * costs.mxu_gemm_cycles(e, ins.k, taps * ins.c_len, self.rows, self.cols,
                                                  ins.dataflow, self.overlap)
        if isinstance(ins, I.MatMul):       # B stationary in the array (weight stationary)
            c.macs += ins.m * ins.n * ins.k_len
            c.sram_bytes[I.ABUF] += ins.m * ins.k_len
            c.sram_bytes[I.WBUF] += ins.n * ins.k_len
            c.sram_bytes[I.ACC] += 4 * ins.m * ins.n * (2 if ins.accumulate else 1)
            return costs.mxu_gemm_cycles(ins.m, ins.n, ins.k_len, self.rows, self.cols, costs.WS, self.overlap)
        if isinstance(ins, I.DwConv):       # an int16 input is two int8 passes, as Conv's
            e, taps, k = ins.out_h * ins.out_w, ins.kernel[0] * ins.kernel[1], ins.c * ins.mult
            passes = ins.in_bytes
            c.macs += passes * e * k * taps
            c.sram_bytes[I.ABUF] += passes * ins.in_h * ins.in_w * ins.c
            c.sram_bytes[I.ABUF] += ins.out_bytes * e * k
            if ins.engine == I.Engine.VPU:
                c.vpu_ops += passes * e * k * taps
                return costs.vpu_cycles(passes * e * k * taps, self.lanes, self.depth)
            return passes * costs.mxu_depthwise_cycles(e, k, taps, self.rows, self.cols, self.overlap)
        if isinstance(ins, I.LayerNorm):    # each row read twice, its gamma and beta once, written once
            ln_ops = layer_norm_ops(ins.rows, ins.n)
            c.vpu_ops += ln_ops
            c.sram_bytes[I.ABUF] += ins.rows * (ins.n * (2 * ins.in_bytes + ins.out_bytes) + I.layer_norm_block(ins.n)[2])
            return costs.vpu_cycles(ln_ops, self.lanes, self.depth)
        if isinstance(ins, I.LstmCell):     # two accumulators per gate channel, the parameter block, cell and hidden
            gates = I.lstm_gates(ins.variant)
            cell_ops = lstm_cell_ops(ins.n, ins.c, ins.variant)
            c.vpu_ops += cell_ops
            c.sram_bytes[I.ACC] += 8 * gates * ins.n * ins.c
            c.sram_bytes[I.WBUF] += 4 * I.lstm_param_rows(ins.variant) * gates * ins.c
            c.sram_bytes[I.ABUF] += 5 * ins.n * ins.c
            return costs.vpu_cycles(cell_ops, self.lanes, self.depth)
        if isinstance(ins, I.GruCell):      # accumulators per gate channel, the parameter block, hidden in and out
            read, gates = I.gru_cell_gates(ins.mode)
            cell_ops = GRU_CELL_OPS_PER_CELL[min(max(ins.mode, 0), 3)] * ins.n * ins.c
            c.vpu_ops += cell_ops
            c.sram_bytes[I.ACC] += 4 * read * 2 * ins.n * ins.c
            c.sram_bytes[I.WBUF] += 4 * I.GRU_PARAM_ROWS * gates * ins.c
            c.sram_bytes[I.ABUF] += 2 * ins.n * ins.c
            return costs.vpu_cycles(cell_ops, self.lanes, self.depth)
        ops = _vpu_ops(ins)
        if ops is not None:     # int16 forms read and write twice the bytes per element
            c.vpu_ops += ops
            c.sram_bytes[I.ABUF] += 2 * ops * I.elem_size(ins)
            return costs.vpu_cycles(ops, self.lanes, self.depth)
        if isinstance(ins, I.Host):
            return 0   # costed by the caller, which knows the segment's size
        raise TypeError(type(ins).__name__)


def lstm_cell_ops(n: int, c: int, variant: int) -> int:
    """VPU operations of an LSTM_CELL: the cell's, the peephole's, the gate clip's and each
    gate's layer norm."""
    ops = (LSTM_CELL_OPS_PER_CELL + LSTM_PEEPHOLE_OPS_PER_CELL * bool(variant & I.LSTM_PEEPHOLE) +
           I.lstm_gates(variant) * bool(variant & I.LSTM_GATE_CLIP)) * n * c       # a clamp per gate
    return ops + (layer_norm_ops(n * I.lstm_gates(variant), c) if variant & I.LSTM_LAYER_NORM else 0)


def layer_norm_ops(rows: int, n: int) -> int:
    """VPU operations of a layer norm of `rows` rows of `n` elements (LAYERNORM, the roofline)."""
    return rows * (LAYER_NORM_OPS_PER_ELEMENT * n + LAYER_NORM_OPS_PER_ROW)


def _vpu_ops(ins: I.Instr) -> int | None:
    if isinstance(ins, I.Requant):
        return ins.n_pix * ins.k
    if isinstance(ins, I.Elementwise):
        return ins.rows * ins.cols
    if isinstance(ins, (I.Lut, I.Select)):
        return ins.n
    if isinstance(ins, I.Sigmoid16):      # rescale, table pair and interpolation, sign fold
        return SIGMOID16_OPS_PER_ELEMENT * ins.n
    if isinstance(ins, I.Lut16):
        return LUT16_OPS_PER_ELEMENT * ins.n
    if isinstance(ins, I.Pool):
        return ins.out_h * ins.out_w * ins.c * ins.kernel[0] * ins.kernel[1]
    if isinstance(ins, (I.Mean, I.ArgMax)):
        return ins.n * ins.c
    if isinstance(ins, I.Softmax):
        return SOFTMAX_PHASE_OPS[ins.phase] * ins.rows * ins.cols
    if isinstance(ins, I.Resize):
        return ins.out_h * ins.out_w * ins.c * (4 if ins.mode else 1)
    if isinstance(ins, I.Magnitude):
        return MAGNITUDE_OPS_PER_ELEMENT * ins.outer * ins.c * ins.inner
    return None


def recurrent_macs(rec: dict) -> int:
    """MACs of a host LSTM / GRU segment: every step's input [B, I] and hidden state [B, C] times
    all gate weights (inputs x [B, T, I], input weights [G, C, I], recurrent [G, C, C])."""
    x, w_in, w_rec = (rec["inputs"][k]["shape"] for k in range(3))
    return int(np.prod(x[:-1])) * (int(np.prod(w_in)) + int(np.prod(w_rec)))


def npu_clock(arch: Arch, cpu_cycles: float) -> int:
    """Host CPU cycles in NPU clock cycles."""
    return int(math.ceil(cpu_cycles * arch.clock_mhz / arch.host.cpu_mhz))


def host_cycles(prog: Program, seg: int, arch: Arch) -> tuple[int, int, float]:
    """(NPU-clock cycles, elements, CPU cycles) of a host segment under the simple CPU model."""
    rec = prog.host_segments[seg]
    elements = sum(int(np.prod(r["shape"])) for r in (*rec["outputs"], *rec["inputs"]))
    work = recurrent_macs(rec) if rec["kind"] in ("lstm", "gru") else elements
    cpu_cycles = arch.host.cycles(HOST_CLASS.get(rec["kind"], "other"), work)
    alternatives = rec["attrs"].get("work") if rec["kind"] == "host_tflite" else None
    if alternatives:            # TFLite control flow: its costliest alternative's operators
        cpu_cycles = max(sum(arch.host.cycles(k, n) for k, n in alt) for alt in alternatives)
    return npu_clock(arch, cpu_cycles), elements, cpu_cycles


class _Port:
    """Busy intervals of an off-chip region's port; a transfer takes the earliest gap that fits."""

    def __init__(self):
        self.starts: list[int] = []
        self.ends: list[int] = []

    def book(self, t: int, length: int) -> int:
        if length <= 0:
            return t
        i = bisect.bisect_right(self.ends, t)      # intervals ending after t
        while i < len(self.starts) and self.starts[i] < t + length:
            t = max(t, self.ends[i])
            i += 1
        self.starts.insert(i, t)
        self.ends.insert(i, t + length)
        return t


def layer_cycles(prog: Program, t: Timeline) -> np.ndarray:
    """Each layer's cycles: how far the end of its last instruction moves the latest end of
    the layers before it (overlapped work is counted once, by the layer that finishes last)."""
    last = np.zeros(len(prog.layers), np.int64)
    for ins, end in zip(prog.instructions, t.end):
        last[ins.layer] = max(last[ins.layer], end)
    return np.diff(np.maximum.accumulate(last), prepend=0) if len(last) else last


def instruction_counts(prog: Program, arch: Arch) -> list[Counts]:
    """Each instruction's own actions (MACs, bytes per SRAM and off-chip region, VPU ops), as
    the timing model counts them; a host instruction's are not modelled here (empty)."""
    model = _Model(prog, arch)
    out = []
    for ins in prog.instructions:
        c = Counts()
        if not isinstance(ins, I.Host):
            model.latency(ins, c)
        out.append(c)
    return out


_DMA_KEY = ("src_space", "dst_space", "shape", "elem", "codec", "packed")   # all a DMA's charge reads
_KEYS: dict[type, attrgetter] = {}


def _key(ins: I.Instr) -> tuple:
    """What an instruction's charge depends on: a DMA's sizes and spaces (not its addresses), every
    other instruction's fields but its layer and dependencies."""
    cls = type(ins)
    get = _KEYS.get(cls)
    if get is None:
        get = _KEYS[cls] = attrgetter(*(_DMA_KEY if cls is I.Dma else [f.name for f in fields(cls)[2:]]))
    return cls, get(ins)


def simulate(prog: Program, arch: Arch, charges: dict | None = None,
             deps: Sequence[tuple[int, ...]] | None = None) -> Timeline:
    """The program's timeline. `charges`: instruction charges (`_Model.charge`) the caller keeps
    across programs for this arch and these regions; programs repeat them, each is worked out once.
    `deps`: each instruction's dependency tokens, given apart from the instructions (their own
    `deps` are then not read)."""
    model = _Model(prog, arch)
    charges = {} if charges is None else charges
    n = len(prog.instructions)
    # plain lists in the loop (a numpy element access costs more than the work per event)
    start, end, engine, busy = [0] * n, [0] * n, [0] * n, [0] * n
    free = [0] * len(I.Engine)          # each queue's next free cycle
    ports: defaultdict[int, _Port] = defaultdict(_Port)
    n_layers = max((ins.layer for ins in prog.instructions), default=-1) + 1
    counts = [Counts() for _ in range(max(n_layers, len(prog.layers)))]
    dma_w, dma_in = int(I.Engine.DMA_W), int(I.Engine.DMA_IN)
    shared_dma = arch.dma.channels < 2
    overhead, setup = costs.INSTR_OVERHEAD, costs.DMA_SETUP_CYCLES
    host, keys = I.Host, _KEYS
    for i, ins in enumerate(prog.instructions):
        c = counts[ins.layer]
        cls = type(ins)
        if cls is host:
            assert isinstance(ins, I.Host)
            eng, uses, work = int(I.engine_of(ins)), (), 0
            lat, elements, cpu = host_cycles(prog, ins.segment, arch)
            c.host_elements += elements
            c.host_cpu_cycles += cpu
        else:
            get = keys.get(cls)
            key = (cls, get(ins)) if get is not None else _key(ins)
            got = charges.get(key)
            if got is None:
                got = charges[key] = model.charge(ins)
            eng, lat, uses, work, macs, vpu_ops, sram, region = got
            if macs:
                c.macs += macs
            if vpu_ops:
                c.vpu_ops += vpu_ops
            for space, nbytes in sram:
                c.sram_bytes[space] += nbytes
            for name, nbytes in region:
                c.region_bytes[name] += nbytes
        queue = dma_in if eng == dma_w and shared_dma else eng
        waits = ins.deps if deps is None else deps[i]
        ready = max([end[d] for d in waits]) if waits else 0
        s = max(free[queue], ready)
        start[i], engine[i] = s, eng
        if uses:
            # a DMA queue issues a transfer and moves on (transfers are pipelined); each port
            # (an off-chip region, or the on-chip copy path) moves one transfer at a time
            e = s
            for space, fixed, port in uses:
                e = max(e, ports[space].book(s + fixed, port) + port + overhead)
            end[i], busy[i] = e, work
            free[queue] = s + setup
            continue
        # busy: the engine's own work (the closed form), without the issue overhead
        end[i] = free[queue] = s + lat + overhead
        busy[i] = lat
    total = max(end) if n else 0
    return Timeline(np.array(start, np.int64), np.array(end, np.int64), np.array(engine, np.int8),
                    np.array(busy, np.int64), counts, total)

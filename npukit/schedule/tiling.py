"""Tile-size and loop-order search for convolution-like layers, against the cost formulas.

A conv layer (per group) is an output of Eh x Ew x K from an input H x W x C. A tile is
`th` output rows x `tk` output channels, reducing over input-channel chunks of `tc`.
Candidates must fit the SRAMs with the buffer count (2 = double buffering); the cheapest
estimate of max(MXU time, DMA time) + per-instruction overhead wins.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ScheduleError
from ..cost import costs
from ..isa.instructions import ALIGN, WIDE_PARAM_BYTES
from .memo import Memo



def _a(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass(frozen=True)
class ConvShape:
    h: int
    w: int
    c: int          # input channels per group
    eh: int
    ew: int
    k: int          # output channels per group
    kh: int
    kw: int
    sh: int
    dh: int
    ih: int         # input dilation (transposed conv)
    depthwise_mult: int = 0   # >0: depthwise with this channel multiplier (c = channels)
    in_bytes: int = 1         # 2: int16 input (16x8, two MXU passes)
    out_bytes: int = 1        # 2: int16 output


@dataclass(frozen=True)
class ConvTiling:
    th: int
    tk: int
    tc: int
    order: str       # k_outer | rows_outer
    dataflow: int
    engine: str      # mxu | vpu (depthwise)
    est_cycles: int
    w_resident: bool = False   # every weight block has its own WBUF slot: each is loaded once


def rows_in(s: ConvShape, th: int) -> int:
    """Real input rows an output tile of `th` rows can touch (upper bound)."""
    span = (th - 1) * s.sh + (s.kh - 1) * s.dh + 1
    return min(s.h, span // s.ih + 1 if s.ih > 1 else span)


def rows_loaded(s: ConvShape, th: int) -> int:
    """Input rows a dense conv's tile of `th` output rows loads: the kh bands of rows its taps
    read when the row dilation leaves rows out between them (codegen/conv.py, `load_bands`),
    else `rows_in`."""
    band = (th - 1) * s.sh + 1
    if s.depthwise_mult == 0 and s.ih == 1 and s.kh > 1 and band < s.dh:
        return min(s.h, s.kh * band)
    return rows_in(s, th)


def one_row_fits(s: ConvShape, abuf_bytes: int, acc_bytes: int, nbuf: int,
                 in_place: tuple[bool, bool] = (False, False)) -> bool:
    """Whether the smallest tile `_search` may take (one output row, one input and one output
    channel) fits the working ABUF and ACC (`in_place`: the input / output is resident in ABUF
    and needs no tile buffer)."""
    in_tile = 0 if in_place[0] else rows_in(s, 1) * s.w * s.in_bytes
    stage = 0 if in_place[1] else s.ew * s.out_bytes
    return nbuf * (_a(in_tile) + _a(stage)) <= abuf_bytes and nbuf * _a(4 * s.in_bytes * s.ew) <= acc_bytes


def _candidates(n: int, unit: int) -> list[int]:
    out = {n}
    v = unit
    while v < n:
        out.add(v)
        v *= 2
    out.update(d for d in (1, 2, 4, 8) if d < n)
    out.update(math.ceil(n / d) for d in (2, 3, 4, 8, 16) if n > d)
    return sorted(out)


def _row_candidates(eh: int, limit: int) -> list[int]:
    top = min(eh, limit) if limit else eh
    out = {top, 1}
    out.update(math.ceil(eh / d) for d in range(1, eh + 1) if math.ceil(eh / d) <= top)
    return sorted(v for v in out if v <= top)


def search_conv(s: ConvShape, arch, nbuf: int, dataflow_pref: str, dw_engine: str = "auto",
                loop_order: str = "auto", max_rows: int = 0, abuf_bytes: int | None = None,
                bw: Bandwidth | None = None, in_place: tuple[bool, bool] = (False, False),
                top: int = 1, memo: Memo | None = None) -> list[ConvTiling]:
    """The `top` cheapest tilings, cheapest first; with `memo` (the compile's), answers are
    remembered (networks repeat layer shapes). `in_place`: the input / output is resident in
    ABUF and needs no tile buffer or copy."""
    def search():
        return _search(s, arch, nbuf, dataflow_pref, dw_engine, loop_order, max_rows, abuf_bytes, bw, in_place, top)
    if memo is None:
        return search()
    key = ("conv", s, arch.fingerprint, nbuf, dataflow_pref, dw_engine, loop_order, max_rows, abuf_bytes, bw,
           in_place, top)
    return memo.get(memo.tilings, key, search)


def keep_best(best: list, cand, top: int) -> None:
    """Insert `cand` into `best` (sorted by estimate, stable) and keep the `top` cheapest."""
    i = len(best)
    while i and best[i - 1].est_cycles > cand.est_cycles:
        i -= 1
    if i < top:
        best.insert(i, cand)
        del best[top:]


_ISSUE = costs.INSTR_OVERHEAD + costs.DMA_SETUP_CYCLES    # the per-instruction term of an estimate


def _search(s, arch, nbuf, dataflow_pref, dw_engine, loop_order, max_rows, abuf_bytes, bw, in_place,
            top, prune: bool = True) -> list[ConvTiling]:
    rows, cols = arch.mxu.rows, arch.mxu.cols
    overlap = arch.mxu.fold_overlap
    a_bytes = arch.abuf_bytes if abuf_bytes is None else abuf_bytes
    w_bytes, acc_bytes = arch.wbuf_bytes, arch.acc_bytes
    if bw is None:
        off = arch.region_bytes_per_cycle(arch.placement.activations)
        bw = Bandwidth(off, arch.region_bytes_per_cycle(arch.placement.weights), off)
    dw = s.depthwise_mult > 0
    best: list[ConvTiling] = []
    k_total = s.c * s.depthwise_mult if dw else s.k
    macs = s.eh * s.ew * k_total * s.kh * s.kw * (1 if dw else s.c)
    floor = macs // max(rows * cols, arch.vpu.lanes if dw else 1)     # no engine does more per cycle
    ths = [(th, math.ceil(s.eh / th)) for th in _row_candidates(s.eh, max_rows)]
    k_cands = [] if dw else _candidates(s.k, cols)
    for tc in _candidates(s.c, rows):
        tks = [tc * s.depthwise_mult] if dw else k_cands
        for tk in tks:
            w_tile = tk * s.kh * s.kw * (1 if dw else tc)
            if nbuf * (_a(w_tile) + _a(WIDE_PARAM_BYTES * tk)) > w_bytes:
                continue
            n_cc, n_kb = math.ceil(s.c / tc), 1 if dw else math.ceil(s.k / tk)
            for th, n_rb in ths:
                # an estimate is at least the peak-rate compute (less the 1 cycle a GEMM's
                # closed form may drop below it) plus its instruction overhead: a tiling whose
                # bound reaches the slowest of a full `best` can never enter it
                bound = floor - n_rb * n_kb * n_cc + n_rb * n_kb * (3 * n_cc + 3) * _ISSUE
                if prune and len(best) == top and bound >= best[-1].est_cycles:
                    continue
                in_tile = 0 if in_place[0] else rows_in(s, th) * s.w * tc * s.in_bytes
                out_tile = th * s.ew * tk
                stage = 0 if in_place[1] else out_tile * s.out_bytes
                if nbuf * (_a(in_tile) + _a(stage)) > a_bytes or (not dw and nbuf * _a(4 * s.in_bytes * out_tile) > acc_bytes):
                    continue
                _estimate(best, top, s, th, tk, tc, k_total, rows, cols, overlap, bw, dataflow_pref, dw_engine,
                          loop_order, arch, in_place)
    if not best:
        raise ScheduleError(f"no tiling of a {s.h}x{s.w}x{s.c} -> {s.eh}x{s.ew}x{k_total} layer "
                            f"(kernel {s.kh}x{s.kw}) fits ABUF {a_bytes} B, WBUF {w_bytes} B, ACC {acc_bytes} B")
    return best


@dataclass(frozen=True)
class Bandwidth:
    """Bytes per cycle of the spaces holding the input, the weights and the output."""
    x: float
    w: float
    o: float


def _transfer(nbytes: int, run: int, bpc: float) -> float:
    """Cycles to move `nbytes` in contiguous runs of `run` bytes, each rounded up to bursts."""
    run = max(1, min(run, nbytes))
    return math.ceil(nbytes / run) * math.ceil(run / costs.BURST_BYTES) * costs.BURST_BYTES / bpc


def _estimate(best, top, s, th, tk, tc, k_total, rows, cols, overlap, bw, pref, dw_engine, loop_order, arch,
              in_place=(False, False)) -> None:
    """Every tiling of these tile sizes (engine, dataflow, loop order) that enters `best`
    (`keep_best`); one that cannot is never built."""
    n_rb, n_cc = math.ceil(s.eh / th), math.ceil(s.c / tc)
    n_kb = 1 if s.depthwise_mult else math.ceil(s.k / tk)
    dw = s.depthwise_mult > 0
    e = th * s.ew
    engines = ["mxu"]
    if dw:
        engines = ["mxu", "vpu"] if dw_engine == "auto" else [dw_engine]
    orders = ["k_outer", "rows_outer"] if loop_order == "auto" else [loop_order]
    if loop_order == "auto" and (n_kb == 1 or n_rb == 1):
        orders = ["rows_outer"]      # one loop: both orders are the same program
    # all weight blocks in their own slots when they take at most half of WBUF (the other
    # half is where the next layer's weights load meanwhile)
    resident = not dw and n_kb * (n_cc * _a(tk * s.kh * s.kw * tc) + _a(WIDE_PARAM_BYTES * tk)) <= arch.wbuf_bytes // 2
    x_tile, xb, ob = rows_loaded(s, th) * s.w * tc * s.in_bytes, s.in_bytes, s.out_bytes
    x_one = _transfer(x_tile, x_tile if tc == s.c else tc * xb, bw.x)
    o_tile = th * s.ew * tk * ob
    o_copy = 0 if in_place[1] else n_rb * n_kb * _transfer(o_tile, o_tile if tk == k_total else tk * ob, bw.o)
    w_one = _transfer(tk * s.kh * s.kw * (1 if dw else tc), 1 << 30, bw.w)
    overhead = n_rb * n_kb * (3 * n_cc + 3) * _ISSUE
    loads = []     # (order, copies of the input tile, of the weight tile)
    for order in orders:
        if dw:
            n_x, n_w = n_rb * n_cc, n_rb * n_cc
        elif n_cc == 1 and order == "k_outer":      # weights stay, inputs re-read per k block
            n_x, n_w = n_rb * n_kb, n_kb
        elif n_cc == 1:                              # inputs stay, weights re-read per row block
            n_x, n_w = n_rb, n_rb * n_kb if n_kb > 1 else 1
        else:
            n_x, n_w = n_rb * n_kb * n_cc, n_rb * n_kb * n_cc
        if resident:
            n_w = n_kb * n_cc
        loads.append((order, (0 if in_place[0] else n_x * x_one) + n_w * w_one + o_copy))
    for engine in engines:
        if dw and engine == "vpu":
            per = costs.vpu_cycles(s.in_bytes * e * tk * s.kh * s.kw, arch.vpu.lanes, arch.vpu.pipeline_depth)
            flows = [costs.WS]
        elif dw:
            per = s.in_bytes * costs.mxu_depthwise_cycles(e, tk, s.kh * s.kw, rows, cols, overlap)
            flows = [costs.WS]
        else:
            flows = ([costs.WS, costs.OS] if pref == "auto" else [costs.WS if pref == "ws" else costs.OS])
        for flow in flows:
            if not dw:
                per = s.in_bytes * costs.mxu_gemm_cycles(e, tk, s.kh * s.kw * tc, rows, cols, flow, overlap)
            compute = per * n_rb * n_kb * n_cc
            for order, dma in loads:
                est = int(max(compute, dma) + overhead)
                if len(best) < top or est < best[-1].est_cycles:
                    keep_best(best, ConvTiling(th, tk, tc, order, flow, engine, est, resident), top)

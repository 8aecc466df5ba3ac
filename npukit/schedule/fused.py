"""Tiling search for a depthwise convolution fused with the 1x1 convolution that consumes it.

The pair runs row band by row band: a band of the depthwise output (all channels, in
channel chunks of `tc`) is computed into ABUF and the 1x1 convolution reduces over those
chunks straight away, so the intermediate tensor never exists as a whole. With an
expansion (`cin` > 0: the 1x1 convolution before the depthwise, from `cin` channels), each
band's depthwise input rows are computed per channel chunk into ABUF from the expansion's
input rows, so the expanded tensor never exists whole either; those pixels are computed in
groups of `eg` (a Conv into ACC and a Requant each), so ACC bounds the group, not the
band. A candidate is
`th` rows x `tc` channels per chunk x `tk` output channels of the 1x1, a depthwise engine
and a dataflow; it is costed with the closed forms of `cost/costs.py` as
max(MXU, VPU, off-chip port) + per-instruction overhead.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..arch import Arch
from ..cost import costs
from ..isa.instructions import PARAM_BYTES
from .memo import Memo
from .tiling import (_ISSUE, Bandwidth, ConvShape, _a, _candidates, _row_candidates, _transfer, keep_best,
                     rows_in)


@dataclass(frozen=True)
class FusedShape:
    dw: ConvShape          # the depthwise layer (c = channels, mult 1)
    k: int                 # output channels of the 1x1
    cin: int = 0           # input channels of a fused expansion 1x1 before the depthwise (0: none)


@dataclass(frozen=True)
class FusedTiling:
    th: int
    tc: int
    tk: int
    engine: str            # depthwise engine: mxu | vpu
    dataflow: int          # of the 1x1
    weights_resident: bool  # every 1x1 weight block gets its own WBUF slot (loaded once)
    est_cycles: int
    ex_resident: bool = True  # (with an expansion) its weight blocks too
    eg: int = 0            # (with an expansion) expanded pixels per Conv + Requant group


def fused_buffers(f: FusedShape, th: int, tc: int, tk: int, nbuf: int, in_place: tuple[bool, bool],
                  resident: bool, ex_resident: bool = True, eg: int = 0) -> tuple[int, int, int]:
    """(ABUF, WBUF, ACC) bytes a candidate needs; `in_place[0]`: the first layer's input is
    read where it is resident (with an expansion: by its Convs, whatever the chunk); `eg`:
    the expansion's pixels per group (0: a whole band's)."""
    s = f.dw
    n_cc = math.ceil(s.c / tc)
    x_tile = 0 if in_place[0] and not f.cin else nbuf * _a(rows_in(s, th) * s.w * tc)
    ex_a = ex_w = ex_acc = 0
    if f.cin:     # the expansion's input rows, weights, parameters and accumulators
        ex_a = 0 if in_place[0] else nbuf * _a(rows_in(s, th) * s.w * f.cin)
        ex_w = (n_cc if ex_resident else nbuf) * _a(tc * f.cin) + n_cc * _a(PARAM_BYTES * tc)
        ex_acc = nbuf * _a(4 * (eg or rows_in(s, th) * s.w) * tc)
    mid = nbuf * n_cc * _a(th * s.ew * tc)
    out = 0 if in_place[1] else nbuf * _a(th * s.ew * tk)
    n_kb = math.ceil(f.k / tk)
    dw_w = n_cc * (_a(s.kh * s.kw * tc) + _a(PARAM_BYTES * tc))
    pw_w = n_kb * n_cc * _a(tk * tc) if resident else nbuf * _a(tk * tc)
    return (x_tile + mid + out + ex_a, dw_w + pw_w + n_kb * _a(PARAM_BYTES * tk) + ex_w,
            nbuf * _a(4 * th * s.ew * tk) + ex_acc)


def expansion_group(f: FusedShape, th: int, tc: int, tk: int, nbuf: int, acc_bytes: int) -> int:
    """Expanded pixels per Conv + Requant group: as many of a band's input pixels (a 1x1
    convolution reads them as one flat run) as fit in the ACC the 1x1's accumulators leave,
    spread evenly over the groups (0: not one fits)."""
    s = f.dw
    x_pix = rows_in(s, th) * s.w
    left = acc_bytes - nbuf * _a(4 * th * s.ew * tk)
    eg = min(x_pix, max(0, left // nbuf) // (4 * tc))
    while eg and nbuf * _a(4 * eg * tc) > left:
        eg -= 1
    return math.ceil(x_pix / math.ceil(x_pix / eg)) if eg else 0


def search_fused(f: FusedShape, arch: Arch, nbuf: int, dataflow_pref: str, dw_engine: str, max_rows: int,
                 abuf_bytes: int, bw: Bandwidth, in_place: tuple[bool, bool], top: int = 1,
                 memo: Memo | None = None) -> list[FusedTiling]:
    """The `top` cheapest fused tilings that fit, cheapest first (none: the pair cannot fuse);
    remembered in `memo` (the compile's) when given."""
    def search():
        return _search(f, arch, nbuf, dataflow_pref, dw_engine, max_rows, abuf_bytes, bw, in_place, top)
    if memo is None:
        return search()
    key = ("fused", f, arch.fingerprint, nbuf, dataflow_pref, dw_engine, max_rows, abuf_bytes, bw, in_place, top)
    return memo.get(memo.tilings, key, search)


def _search(f, arch: Arch, nbuf, pref, dw_engine, max_rows, abuf_bytes, bw, in_place, top, prune: bool = True):
    s = f.dw
    rows, cols, overlap = arch.mxu.rows, arch.mxu.cols, arch.mxu.fold_overlap
    lanes, depth = arch.vpu.lanes, arch.vpu.pipeline_depth
    wbuf, acc_bytes = arch.wbuf_bytes, arch.acc_bytes
    engines = ["mxu", "vpu"] if dw_engine == "auto" else [dw_engine]
    flows = [costs.WS, costs.OS] if pref == "auto" else [costs.WS if pref == "ws" else costs.OS]
    best: list[FusedTiling] = []
    pw_floor = s.eh * s.ew * f.k * s.c // (rows * cols)
    tks = _candidates(f.k, cols)
    bands = [(th, math.ceil(s.eh / th), rows_in(s, th)) for th in _row_candidates(s.eh, max_rows)]
    taps = s.kh * s.kw
    for tc in _candidates(s.c, rows):
        # a resident input is read in place only as whole pixels (DwConv has no channel stride)
        ip = (in_place[0] and (tc == s.c or f.cin > 0), in_place[1])
        n_cc = math.ceil(s.c / tc)
        # `fused_buffers` in parts: the WBUF bytes of the depthwise and (per residency) of
        # the expansion, the same for every band and 1x1 block
        dw_w = n_cc * (_a(taps * tc) + _a(PARAM_BYTES * tc))
        ex_w = {r: (n_cc if r else nbuf) * _a(tc * f.cin) + n_cc * _a(PARAM_BYTES * tc) if f.cin else 0
                for r in (True, False)}
        dw_cost: dict[int, tuple[int, int]] = {}    # th -> the depthwise's (MXU, VPU) cycles
        for tk in tks:
            n_kb = math.ceil(f.k / tk)
            w_one = _transfer(tk * tc, 1 << 30, bw.w)
            w_fixed = dw_w + n_kb * _a(PARAM_BYTES * tk)
            pw_w = {True: n_kb * n_cc * _a(tk * tc), False: nbuf * _a(tk * tc)}
            per_band = []      # what each band height costs whichever the weights' residency
            for th, n_rb, x_rows in bands:
                x_in = x_rows           # the rows a band's tile holds (ABUF), before the re-read saving
                if tc == s.c and nbuf >= 2:    # a band re-reads only rows the last one did not
                    x_rows = min(x_rows, th * s.sh)
                n_instr = n_rb * (2 * n_cc + n_kb * (n_cc + 2))
                eg = n_g = 0
                if f.cin:     # per band: its input rows, and per chunk and group a Conv + Requant
                    eg = expansion_group(f, th, tc, tk, nbuf, acc_bytes)
                    if not eg:
                        continue
                    n_g = math.ceil(x_rows * s.w / eg)
                    n_instr += n_rb * (1 + 2 * n_cc * n_g)
                e = th * s.ew
                # ABUF and ACC bytes (`fused_buffers`), the same for both residencies
                a = (0 if ip[0] and not f.cin else nbuf * _a(x_in * s.w * tc)) + nbuf * n_cc * _a(e * tc) \
                    + (0 if ip[1] else nbuf * _a(e * tk)) + (0 if ip[0] or not f.cin else nbuf * _a(x_in * s.w * f.cin))
                acc = nbuf * _a(4 * e * tk) + (nbuf * _a(4 * (eg or x_in * s.w) * tc) if f.cin else 0)
                if a > abuf_bytes or acc > acc_bytes:
                    continue          # fits in neither residency
                x_tile = x_rows * s.w * tc
                g_pix, w_ex = 0, 0.0
                if f.cin:     # the band's rows are computed, from the expansion's input rows
                    x_dma = 0.0 if ip[0] else n_rb * _transfer(x_rows * s.w * f.cin, 1 << 30, bw.x)
                    g_pix, w_ex = math.ceil(x_rows * s.w / n_g), _transfer(tc * f.cin, 1 << 30, bw.w)
                else:
                    x_dma = 0.0 if ip[0] else n_rb * n_cc * _transfer(x_tile, x_tile if tc == s.c else tc, bw.x)
                o_dma = 0 if ip[1] else n_rb * n_kb * _transfer(e * tk, e * tk if tk == f.k else tk, bw.o)
                requant = n_rb * n_kb * costs.vpu_cycles(e * tk, lanes, depth)
                per_band.append([th, n_rb, n_instr, eg, n_g, e, g_pix, w_ex, x_dma, o_dma, requant, None])
            for resident in (True, False):
                w_res = w_fixed + pw_w[resident]
                for band in per_band:
                    th, n_rb, n_instr, eg, n_g, e, g_pix, w_ex, x_dma, o_dma, requant, gemms = band
                    n_w = n_kb * n_cc if resident or n_kb * n_cc == 1 else n_rb * n_kb * n_cc
                    w_dma = n_w * w_one
                    # as the plain search: the 1x1's MACs at peak rate (less a cycle a GEMM), the
                    # requantisations and the transfers (the expansion's weights loaded once) bound
                    # every estimate from below, with the instruction overheads
                    dma = (x_dma + n_cc * w_ex if f.cin else x_dma) + o_dma + w_dma
                    bound = int(max(pw_floor - n_rb * n_kb * n_cc, requant, dma) + n_instr * _ISSUE)
                    if prune and len(best) == top and bound >= best[-1].est_cycles:
                        continue
                    ex_res = True
                    w = w_res + ex_w[True]
                    if f.cin and w > wbuf:    # the expansion's weights reloaded per band
                        ex_res = False
                        w = w_res + ex_w[False]
                    if w > wbuf:
                        continue
                    ex_vpu = 0
                    if f.cin:
                        dma = x_dma + (n_cc if ex_res or n_cc == 1 else n_rb * n_cc) * w_ex + o_dma + w_dma
                        ex_vpu = n_rb * n_cc * n_g * costs.vpu_cycles(g_pix * tc, lanes, depth)
                    if gemms is None:     # the 1x1's (and the expansion's) MXU cycles in each dataflow
                        gemms = band[-1] = []
                        for flow in flows:
                            mxu = n_rb * n_kb * n_cc * costs.mxu_gemm_cycles(e, tk, tc, rows, cols, flow, overlap)
                            if f.cin:
                                mxu += n_rb * n_cc * n_g * costs.mxu_gemm_cycles(g_pix, tc, f.cin, rows, cols, flow,
                                                                                 overlap)
                            gemms.append((flow, mxu))
                    dw = dw_cost.get(th)
                    if dw is None:
                        dw = dw_cost[th] = (n_rb * n_cc * costs.mxu_depthwise_cycles(e, tc, taps, rows, cols, overlap),
                                            n_rb * n_cc * costs.vpu_cycles(e * tc * taps, lanes, depth))
                    for engine in engines:
                        dw_mxu, dw_vpu = (dw[0], 0) if engine == "mxu" else (0, dw[1])
                        for flow, mxu in gemms:
                            est = int(max(dw_mxu + mxu, requant + dw_vpu + ex_vpu, dma) + n_instr * _ISSUE)
                            if len(best) < top or est < best[-1].est_cycles:    # else it cannot enter
                                keep_best(best, FusedTiling(th, tc, tk, engine, flow, resident, est, ex_res, eg), top)
    return best

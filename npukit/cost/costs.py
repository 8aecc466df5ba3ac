"""Closed-form latency of each instruction: used by the timing model and the scheduler's search.

MXU (DESIGN.md section 6, SCALE-Sim's formulas): a GEMM of E output pixels, K filters and a
reduction of Win = kh*kw*c on an R x C array. Weight stationary maps Win to rows, K to
columns and streams E (T = E); output stationary maps E to rows, K to columns and streams
Win (T = Win). Without fold overlap one fold costs 2R + C + T - 2 (ws) or T + R + C - 2 (os)
and a GEMM costs folds * per_fold - 1. With fold overlap (double-buffered PEs) the next
fold's weights load while the current fold streams: R + folds * max(T, R) + R + C - 2 - 1
(ws) and folds * max(T, R) + R + C - 2 - 1 (os).
"""
from __future__ import annotations

import math

WS, OS = 0, 1
DMA_SETUP_CYCLES = 16       # descriptor fetch and address generation per DMA command
BURST_BYTES = 32            # off-chip transfers move whole bursts: short runs waste bandwidth
INSTR_OVERHEAD = 4          # issue cost of any instruction
SRAM_BYTES_PER_CYCLE = 64   # SRAM-to-SRAM copies


def mxu_gemm_cycles(e: int, k: int, win: int, rows: int, cols: int, dataflow: int, overlap: bool) -> int:
    if e <= 0 or k <= 0 or win <= 0:
        return 0
    if dataflow == WS:
        folds = math.ceil(win / rows) * math.ceil(k / cols)
        t = e
        if not overlap:
            return folds * (2 * rows + cols + t - 2) - 1
        return rows + folds * max(t, rows) + rows + cols - 2 - 1
    folds = math.ceil(e / rows) * math.ceil(k / cols)
    t = win
    if not overlap:
        return folds * (t + rows + cols - 2) - 1
    return folds * max(t, rows) + rows + cols - 2 - 1


def best_dataflow(e: int, k: int, win: int, rows: int, cols: int, allowed: str, overlap: bool) -> int:
    if allowed == "ws":
        return WS
    if allowed == "os":
        return OS
    ws = mxu_gemm_cycles(e, k, win, rows, cols, WS, overlap)
    os_ = mxu_gemm_cycles(e, k, win, rows, cols, OS, overlap)
    return WS if ws <= os_ else OS


def mxu_depthwise_cycles(e: int, channels: int, taps: int, rows: int, cols: int, overlap: bool) -> int:
    """Depthwise on the MXU: one channel per column, the kernel taps down the rows."""
    return mxu_gemm_cycles(e, channels, taps, rows, cols, WS, overlap) if channels else 0


def vpu_cycles(ops: int, lanes: int, depth: int) -> int:
    return math.ceil(ops / lanes) + depth if ops > 0 else 0


def dma_cycles(nbytes: int, runs: int, run_bytes: int, bytes_per_cycle: float,
               latency_cycles: float) -> tuple[int, int]:
    """(setup + latency, transfer cycles): bytes / bandwidth, each contiguous run rounded up
    to whole bursts. The transfer part occupies the region; the fixed part is pipelined."""
    fixed = int(DMA_SETUP_CYCLES + math.ceil(latency_cycles))
    if nbytes <= 0:
        return fixed, 0
    moved = runs * math.ceil(run_bytes / BURST_BYTES) * BURST_BYTES
    return fixed, math.ceil(moved / bytes_per_cycle)

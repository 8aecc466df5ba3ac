"""Operands the program itself shows never change, found once when a program is bound.

An off-chip range no instruction writes (no DMA, Fill or host segment output lands in it) holds
its initial image for ever: a compressed weight stream there decodes to the same elements on
every run. Following WBUF writes in program order, a Conv whose whole weight block was last
written by one DMA of such a range reads those same bytes every time, so its product can be
bound to the block once (as the int8 [depth, k] matrix) instead of comparing the bytes on every
call. Any order the simulator is asked to run in respects the program's dependencies, so the
last writer of each byte a Conv reads is the same in it.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..isa import instructions as I
from ..isa import ranges
from ..isa import wcodec
from ..isa.program import Program
from ..isa.strided import merge_dims

UNKNOWN = -2


def _contiguous(shape, strides, elem: int) -> bool:
    """Whether a strided pattern is one dense run."""
    return not merge_dims(shape, strides, strides, elem)[0]


def _writes(prog: Program, ins: I.Instr) -> tuple[int, int, int] | None:
    """(space, lo, hi) that an instruction writing outside ABUF and ACC may write."""
    if isinstance(ins, (I.Dma, I.Fill, I.Gather)):
        w = ranges.writes(ins)
        return w[0] if w else None
    if isinstance(ins, I.Host):
        try:
            outs = prog.host_segments[ins.segment]["outputs"]
            spans = [(int(o["space"]), int(o["addr"]),
                      int(o["addr"]) + math.prod(o["shape"]) * np.dtype(o["dtype"]).itemsize) for o in outs]
            if len({s for s, _, _ in spans}) == 1:      # one range covering every output
                return spans[0][0], min(lo for _, lo, _ in spans), max(hi for _, _, hi in spans)
            return I.WBUF, 0, 1 << 62
        except (LookupError, TypeError, ValueError):
            return I.WBUF, 0, 1 << 62      # a missing or malformed segment: binding fails anyway
    return None


def _source(img: np.ndarray, d: I.Dma, lo: int, hi: int, n: int) -> np.ndarray | None:
    if d.codec:
        data = wcodec.decode(img[lo:hi], n) if d.codec == wcodec.RICE and not any(d.src_strides) else None
    else:
        pattern = as_strided(img[d.src:], tuple(d.shape) + (d.elem,), tuple(d.src_strides) + (1,), writeable=False)
        data = pattern.reshape(-1).copy()
    if data is not None:
        data.flags.writeable = False        # shared by every DMA of this source
    return data


def known_operands(prog: Program, wbuf_bytes: int) -> dict[int, np.ndarray]:
    """{instruction index: array}: the decoded elements of each compressed DMA whose stream
    nothing overwrites, and the int8 [depth, k] weight matrix of each Conv whose block comes
    whole from one DMA of a range nothing overwrites."""
    images = {r.space: np.frombuffer(r.image, np.uint8) for r in prog.regions}
    written = {space: np.zeros(img.size, bool) for space, img in images.items()}
    for ins in prog.instructions:
        w = _writes(prog, ins)
        if w is not None and w[0] in written:
            written[w[0]][max(w[1], 0):max(w[2], 0)] = True

    decoded: dict[tuple, np.ndarray | None] = {}      # one array per source pattern (a weight
    # block a recurrent layer loads at every step is decoded and held once, not once a step)

    def constant_source(d: I.Dma) -> np.ndarray | None:
        """The bytes a DMA delivers, in destination order, if its source never changes."""
        img = images.get(d.src_space)
        if img is None or min(d.shape) <= 0 or d.elem <= 0:
            return None
        _, lo, hi = ranges.reads(d)[0]
        if lo < 0 or hi > img.size or written[d.src_space][lo:hi].any():
            return None
        n = math.prod(d.shape) * d.elem
        if (n > img.size and not d.codec) or n > 1 << 40:
            return None
        key = (d.src_space, d.src, tuple(d.shape), tuple(d.src_strides), d.elem, d.codec, lo, hi)
        if key not in decoded:
            decoded[key] = _source(img, d, lo, hi, n)
        return decoded[key]

    known: dict[int, np.ndarray] = {}
    payloads: dict[int, tuple[int, np.ndarray]] = {}       # WBUF writer -> (its first byte, its bytes)
    matrices: dict[tuple, np.ndarray] = {}
    writes = [_writes(prog, ins) for ins in prog.instructions]
    top = max((min(max(w[2], 0), wbuf_bytes) for w in writes if w is not None and w[0] == I.WBUF), default=0)
    owner = np.full(top, -1, np.int32)      # the last writer of each WBUF byte written (-1: none)
    for i, (ins, w) in enumerate(zip(prog.instructions, writes)):
        if w is not None and w[0] == I.WBUF:
            lo, hi = max(w[1], 0), min(max(w[2], 0), top)
            dma = ins if isinstance(ins, I.Dma) else None
            data = constant_source(dma) if dma is not None else None
            if dma is not None and data is not None and dma.codec:
                known[i] = data
            if (dma is not None and data is not None and _contiguous(dma.shape, dma.dst_strides, dma.elem)
                    and (lo, hi - lo) == (dma.dst, data.size)):
                owner[lo:hi] = i
                payloads[i] = lo, data
            else:
                owner[lo:hi] = UNKNOWN
        elif isinstance(ins, I.Conv) and ins.in_bytes == 1:
            depth = ins.kernel[0] * ins.kernel[1] * ins.c_len
            _, lo, hi = next(r for r in ranges.reads(ins) if r.space == I.WBUF)
            if ins.k < 1 or depth < 1 or lo < 0 or hi > top or owner[lo] < 0 or (owner[lo:hi] != owner[lo]).any():
                continue
            first, data = payloads[int(owner[lo])]
            key = (id(data), lo - first, ins.k, depth)       # (data: one array per source)
            if key not in matrices:
                block = data[lo - first:hi - first].view(np.int8).reshape(ins.k, depth)
                matrices[key] = np.ascontiguousarray(block.T)
            known[i] = matrices[key]
    return known

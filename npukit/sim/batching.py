"""Products of neighbouring conv tiles batched into one, for runs in program order.

A tiled 1x1 layer is often a run of (CONV, REQUANT) pairs that differ only in which rows they
cover: the same weights, inputs in consecutive ABUF rows, outputs in consecutive rows, the
accumulators alternating between two ACC slots. Run as written that is one onnxruntime call
per tile; batched it is one offset copy of all the input rows, one product into a scratch
buffer, one requantisation of all the rows, and copies into ACC of the tiles whose
accumulators a later instruction reads. The result is the same bytes everywhere that is read:
- every pair's inputs are read before any of the group's outputs is written, so a group ends
  before a CONV whose input rows an earlier REQUANT of the group writes;
- a REQUANT reads its CONV's accumulators from the scratch buffer instead of ACC;
- ACC receives a tile's accumulators only if some instruction after the group reads a byte of
  them before it is overwritten (a forward scan in program order).
Only program-order runs use the groups; other orders run instruction by instruction.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..isa import instructions as I
from ..isa import ranges
from .gemm_int8 import MAX_DEPTH
from . import microops
from .plan import Step


@dataclass(frozen=True)
class Group:
    start: int          # the first CONV; pairs (CONV, REQUANT) up to `stop`
    stop: int


def _pair(ins: list[I.Instr], i: int, known: dict) -> bool:
    """Whether instructions i, i+1 are a plain 1x1 CONV with folded weights over whole
    contiguous rows and the REQUANT of exactly its accumulators."""
    if i + 1 >= len(ins):
        return False
    c, r = ins[i], ins[i + 1]
    if not isinstance(c, I.Conv) or not isinstance(r, I.Requant):
        return False
    return (i in known and c.in_bytes == 1 and c.kernel == (1, 1) and c.stride == (1, 1) and c.in_dil == (1, 1)
            and c.pad_t == 0 and c.pad_l == 0 and (c.in_h, c.in_w) == (c.out_h, c.out_w) and c.c_off == 0
            and c.c_stride == c.c_len and not c.accumulate and -128 <= c.zp <= 127 and 1 <= c.c_len <= MAX_DEPTH
            and c.k >= 1 and r.mode == 0 and r.src == c.dst and r.n_pix == c.out_h * c.out_w and r.k == c.k)


def _extends(ins: list[I.Instr], prev: int, j: int, first: int, known: dict) -> bool:
    """Whether pair j continues the group whose last pair is `prev` and first is `first`."""
    a, b, ra, rb = ins[prev], ins[j], ins[prev + 1], ins[j + 1]
    assert isinstance(a, I.Conv) and isinstance(b, I.Conv)       # both are pairs (_pair)
    assert isinstance(ra, I.Requant) and isinstance(rb, I.Requant)
    rows = a.out_h * a.out_w
    if not (known[j] is known[prev] and (b.k, b.c_len, b.zp) == (a.k, a.c_len, a.zp)
            and b.src == a.src + rows * a.c_len and rb.params == ra.params
            and (rb.out_zp, rb.act_min, rb.act_max, rb.dst_pix_stride, rb.dst_c_off)
            == (ra.out_zp, ra.act_min, ra.act_max, ra.dst_pix_stride, ra.dst_c_off)
            and rb.dst == ra.dst + rows * ra.dst_pix_stride):
        return False
    r0 = ins[first + 1]       # the group's REQUANT writes so far, against this CONV's input rows
    assert isinstance(r0, I.Requant)
    lo, hi = r0.dst + r0.dst_c_off, ra.dst + ra.dst_c_off + (rows - 1) * ra.dst_pix_stride + ra.k
    return hi <= b.src or b.src + b.out_h * b.out_w * b.c_len <= lo


def find_groups(ins: list[I.Instr], known: dict) -> list[Group]:
    """The maximal runs of at least two (CONV, REQUANT) pairs that batch."""
    groups: list[Group] = []
    i = 0
    while i < len(ins):
        if not _pair(ins, i, known):
            i += 1
            continue
        last, j = i, i + 2
        while _pair(ins, j, known) and _extends(ins, last, j, i, known):
            last, j = j, j + 2
        if last > i:
            groups.append(Group(i, last + 2))
        i = last + 2
    return groups


def _acc_reads_writes(prog, ins: I.Instr) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """ACC byte ranges an instruction reads and writes (isa.ranges). A host segment reads all
    of ACC if any; a DMA's write range may have gaps, so it counts as writing nothing."""
    if isinstance(ins, I.Host):
        return [(0, 1 << 62)], []
    acc_reads = [(lo, hi) for space, lo, hi in ranges.reads(ins) if space == I.ACC]
    if isinstance(ins, I.Dma):
        return acc_reads, []
    return acc_reads, [(lo, hi) for space, lo, hi in ranges.writes(ins) if space == I.ACC]


def _read_later(prog, stop: int, mask: np.ndarray) -> bool:
    """Whether a byte set in `mask` (ACC) is read after instruction `stop` before being overwritten."""
    mask = mask.copy()
    for ins in prog.instructions[stop:]:
        reads, writes = _acc_reads_writes(prog, ins)
        if any(mask[max(lo, 0):hi].any() for lo, hi in reads):
            return True
        for lo, hi in writes:
            mask[max(lo, 0):hi] = False
        if not mask.any():
            return False
    return any(t.space == I.ACC for t in prog.outputs)


def group_steps(m, prog, g: Group, b: np.ndarray) -> list[Step] | None:
    """The group as steps on machine m (weights `b`, the folded [depth, k] matrix), or None when
    a micro-op cannot express a part (then its pairs run one by one)."""
    ins = prog.instructions
    convs = [c for c in ins[g.start:g.stop:2] if isinstance(c, I.Conv)]   # every one (find_groups)
    c0, r0 = convs[0], ins[g.start + 1]
    assert isinstance(r0, I.Requant)
    rows = [c.out_h * c.out_w for c in convs]
    total, k = sum(rows), c0.k
    a = m.scratch.get("batch_a", (total, c0.c_len), np.uint8)
    y = m.scratch.get("batch_y", (total, k), np.int32)
    params = m.view(I.WBUF, r0.params, (3, k), np.int32)
    dst = m.strided(I.ABUF, r0.dst + r0.dst_c_off, (total, k), (r0.dst_pix_stride, 1), 1)[..., 0].view(np.int8)
    steps: list[Step | None] = [microops.copy(m.view(I.ABUF, c0.src, (total, c0.c_len), np.uint8), a, 0x80),
             m.gemm.bind(a, b, np.array(c0.zp + 128, np.uint8), y),
             microops.requant(y, params, dst, r0.out_zp, r0.act_min, r0.act_max)]
    start = 0
    for t, (c, n) in enumerate(zip(convs, rows)):
        left = np.zeros(m.mem[I.ACC].size, bool)       # this tile's bytes, less the later tiles'
        left[c.dst:c.dst + 4 * n * k] = True
        for later, n2 in zip(convs[t + 1:], rows[t + 1:]):
            left[later.dst:later.dst + 4 * n2 * k] = False
        if left.any() and _read_later(prog, g.stop, left):
            steps.append(microops.copy(y[start:start + n], m.view(I.ACC, c.dst, (n, k), np.int32)))
        start += n
    whole = [s for s in steps if s is not None]
    return whole if len(whole) == len(steps) else None


def batched_program(m, prog, steps: list[list[Step]], known: dict) -> list[tuple[int, Step]] | None:
    """(instruction, step) in program order with the groups batched; None when there are none."""
    out: list[tuple[int, Step]] = []
    at = 0
    for g in find_groups(prog.instructions, known):
        batch = group_steps(m, prog, g, known[g.start])
        if batch is None:
            continue
        out += [(i, s) for i in range(at, g.start) for s in steps[i]]
        out += [(g.start + 1, s) for s in batch]       # errors name the first REQUANT
        at = g.stop
    if at == 0:
        return None
    return out + [(i, s) for i in range(at, len(steps)) for s in steps[i]]

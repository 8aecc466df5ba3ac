"""The instruction emitter: appends instructions and derives their dependency tokens.

The bytes each instruction reads and writes are the ISA's (isa.ranges; a HOST instruction's
are its segment's tensors, given by the caller); the tracker adds a wait on each earlier
instruction it conflicts with (read-after-write, write-after-read, write-after-write). Any
order the timing model picks within these waits computes the same result as program order,
which is the order the functional simulator uses.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..isa import instructions as I
from ..isa import ranges, wcodec
from ..isa.strided import merge_dims

Range = tuple[int, int, int]  # space, lo, hi (exclusive)


class _Log:
    """Accesses of one space: disjoint writes and (possibly nested) reads, each sorted by start."""

    def __init__(self):
        self.writes: list[tuple[int, int, int]] = []   # (lo, hi, idx), disjoint
        self.reads: list[tuple[int, int, int]] = []
        self.max_read = self.max_write = 0

    @staticmethod
    def _overlapping(entries, lo: int, hi: int, reach: int) -> list[int]:
        """Positions of entries overlapping [lo, hi); no entry is longer than `reach`."""
        i, n = bisect.bisect_left(entries, (lo - reach,)), len(entries)
        out = []
        while i < n:
            a_lo, a_hi, _ = entries[i]
            if a_lo >= hi:
                break
            if a_hi > lo:
                out.append(i)
            i += 1
        return out

    def read(self, lo: int, hi: int, idx: int) -> set[int]:
        deps = {self.writes[i][2] for i in self._overlapping(self.writes, lo, hi, self.max_write)}
        bisect.insort(self.reads, (lo, hi, idx))
        self.max_read = max(self.max_read, hi - lo)
        return deps

    def write(self, lo: int, hi: int, idx: int) -> set[int]:
        deps = set()
        for entries, reach in ((self.writes, self.max_write), (self.reads, self.max_read)):
            hits = self._overlapping(entries, lo, hi, reach)
            pieces = []
            for i in hits:
                a_lo, a_hi, a_idx = entries[i]
                deps.add(a_idx)
                # the new write shadows these bytes: later hazards reach the old access through it
                if a_lo < lo:
                    pieces.append((a_lo, lo, a_idx))
                if hi < a_hi:
                    pieces.append((hi, a_hi, a_idx))
            for i in reversed(hits):
                del entries[i]
            for piece in pieces:
                bisect.insort(entries, piece)
        bisect.insort(self.writes, (lo, hi, idx))
        self.max_write = max(self.max_write, hi - lo)
        return deps


@dataclass
class Emitter:
    program: list[I.Instr] = field(default_factory=list)
    _logs: dict[int, _Log] = field(default_factory=dict)
    layer: int = 0
    readonly: dict[int, tuple[int, int]] = field(default_factory=dict)  # space -> constant range
    packed: dict[int, tuple[int, int]] = field(default_factory=dict)    # compressed constants (ConstImage.packed)
    packed_space: int = -1                                              # the space holding them

    def _is_const(self, space: int, lo: int, hi: int) -> bool:
        r = self.readonly.get(space)
        return r is not None and r[0] <= lo and hi <= r[1]

    def emit(self, make, host_reads: Sequence[Range] = (), host_writes: Sequence[Range] = ()) -> int:
        """`make(layer, deps)` builds the instruction; returns its index. Its reads and writes
        are the ISA's; `host_reads` / `host_writes`: a HOST instruction's segment tensors."""
        idx = len(self.program)
        ins = make(self.layer, ())
        deps: set[int] = set()
        logs = self._logs
        for space, lo, hi in (*ranges.reads(ins), *host_reads):
            if not self._is_const(space, lo, hi):  # constants are never written: no hazard
                deps |= (logs.get(space) or logs.setdefault(space, _Log())).read(lo, hi, idx)
        for space, lo, hi in (*ranges.writes(ins), *host_writes):
            deps |= (logs.get(space) or logs.setdefault(space, _Log())).write(lo, hi, idx)
        deps.discard(idx)
        object.__setattr__(ins, "deps", tuple(sorted(deps)))    # a fresh record, not yet shared
        self.program.append(ins)
        return idx

    def replay(self, entries) -> None:
        """Emit what a Recorder kept, in order, with this emitter's dependencies."""
        for ins, host_reads, host_writes in entries:
            self.layer = ins.layer
            self.emit(lambda layer, deps, ins=ins: _with_deps(ins, deps), host_reads, host_writes)


def _with_deps(ins: I.Instr, deps: tuple[int, ...]) -> I.Instr:
    out = object.__new__(type(ins))     # a copy of the frozen record with its own deps
    out.__dict__.update(ins.__dict__, deps=deps)
    return out


@dataclass
class Recorder(Emitter):
    """Keeps each instruction (built at once: its maker may read loop variables that change
    next) and a HOST's segment ranges instead of tracking hazards, to be replayed after other
    instructions (`Emitter.replay`, which takes the instructions' own ranges from isa.ranges)."""
    entries: list = field(default_factory=list)

    def emit(self, make, host_reads: Sequence[Range] = (), host_writes: Sequence[Range] = ()) -> int:
        self.entries.append((make(self.layer, ()), tuple(host_reads), tuple(host_writes)))
        return len(self.entries) - 1


def dma(e: Emitter, src_space, src, src_strides, dst_space, dst, dst_strides, shape, elem) -> int:
    if src_space == e.packed_space and src in e.packed:
        return _unpack(e, src_space, src, dst_space, dst, merge_dims(shape, src_strides, dst_strides, elem))
    n, s, d, run = merge_dims(shape, src_strides, dst_strides, elem)
    if len(n) > 4:
        raise ValueError(f"a DMA block needs {len(n)} strided dims (4 at most)")
    pad = 4 - len(n)
    shape, src_strides, dst_strides = (1,) * pad + tuple(n), (0,) * pad + tuple(s), (0,) * pad + tuple(d)
    return e.emit(lambda layer, deps: I.Dma(layer, deps, src_space, src, src_strides, dst_space, dst,
                                            dst_strides, shape, run))


def _unpack(e: Emitter, src_space: int, src: int, dst_space: int, dst: int, merged) -> int:
    """A decompressing load of a whole compressed constant block into contiguous SRAM."""
    n, _, _, run = merged
    raw, stream = e.packed[src]
    if n or run != raw or dst_space >= I.REGION0:
        raise ValueError(f"compressed constant at {src} is loaded only whole into SRAM ({raw} bytes)")
    return e.emit(lambda layer, deps: I.Dma(layer, deps, src_space, src, (0,) * 4, dst_space, dst, (0,) * 4,
                                            (1, 1, 1, 1), raw, codec=wcodec.RICE, packed=stream))


def contiguous(e: Emitter, src_space, src, dst_space, dst, nbytes: int) -> int:
    return dma(e, src_space, src, (0, 0, 0, 0), dst_space, dst, (0, 0, 0, 0), (1, 1, 1, 1), nbytes)

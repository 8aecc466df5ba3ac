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
        self.max_read = self.max_write = 0              # no entry is longer

    def read(self, lo: int, hi: int, idx: int, deps: set[int]) -> None:
        """Adds the writers of [lo, hi) to `deps` and logs the read."""
        writes = self.writes
        i, n = bisect.bisect_left(writes, (lo - self.max_write,)), len(writes)
        while i < n:
            a_lo, a_hi, a_idx = writes[i]
            if a_lo >= hi:
                break
            if a_hi > lo:
                deps.add(a_idx)
            i += 1
        bisect.insort(self.reads, (lo, hi, idx))
        if hi - lo > self.max_read:
            self.max_read = hi - lo

    def write(self, lo: int, hi: int, idx: int, deps: set[int]) -> None:
        """Adds the earlier readers and writers of [lo, hi) to `deps` and logs the write."""
        for entries, reach in ((self.writes, self.max_write), (self.reads, self.max_read)):
            j = bisect.bisect_left(entries, (lo - reach,))
            n = len(entries)
            first = -1      # the first entry the write overlaps; those before it stay as they are
            while j < n:
                a_lo, a_hi, a_idx = entries[j]
                if a_lo >= hi:
                    break
                if a_hi > lo:
                    deps.add(a_idx)
                    if first < 0:
                        first = j
                j += 1
            if first < 0:
                continue
            kept: list[tuple[int, int, int]] = []
            after: list[tuple[int, int, int]] = []
            for entry in entries[first:j]:
                a_lo, a_hi, a_idx = entry
                if a_hi <= lo:
                    kept.append(entry)
                    continue
                # the new write shadows these bytes: later hazards reach the old access through it
                if a_lo < lo:
                    kept.append((a_lo, lo, a_idx))
                if hi < a_hi:
                    after.append((hi, a_hi, a_idx))
            # still sorted by start: the pieces before start below hi, those after at hi,
            # and what follows j starts at hi or later
            if len(after) > 1:
                after.sort()
            entries[first:j] = kept + after if after else kept
        bisect.insort(self.writes, (lo, hi, idx))
        if hi - lo > self.max_write:
            self.max_write = hi - lo


@dataclass
class Emitter:
    program: list[I.Instr] = field(default_factory=list)
    _logs: dict[int, _Log] = field(default_factory=dict)
    layer: int = 0
    readonly: dict[int, tuple[int, int]] = field(default_factory=dict)  # space -> constant range
    packed: dict[int, tuple[int, int]] = field(default_factory=dict)    # compressed constants (ConstImage.packed)
    packed_space: int = -1                                              # the space holding them

    def emit(self, make, host_reads: Sequence[Range] = (), host_writes: Sequence[Range] = ()) -> int:
        """`make(layer, deps)` builds the instruction; returns its index. Its reads and writes
        are the ISA's; `host_reads` / `host_writes`: a HOST instruction's segment tensors."""
        ins = make(self.layer, ())
        reads: Sequence[Range] = ranges.reads(ins)
        writes: Sequence[Range] = ranges.writes(ins)
        if host_reads or host_writes:
            reads, writes = [*reads, *host_reads], [*writes, *host_writes]
        deps = self._deps(reads, writes, len(self.program))
        object.__setattr__(ins, "deps", deps)    # a fresh record, not yet shared
        self.program.append(ins)
        return len(self.program) - 1

    def _deps(self, reads: Sequence[Range], writes: Sequence[Range], idx: int) -> tuple[int, ...]:
        """The dependency tokens of instruction `idx` (the next one), which accesses these ranges, logged."""
        deps: set[int] = set()
        logs, readonly = self._logs, self.readonly
        for space, lo, hi in reads:
            r = readonly.get(space)
            if r is not None and r[0] <= lo and hi <= r[1]:
                continue    # constants are never written: no hazard
            log = logs.get(space)
            if log is None:
                log = logs[space] = _Log()
            log.read(lo, hi, idx, deps)
        for space, lo, hi in writes:
            log = logs.get(space)
            if log is None:
                log = logs[space] = _Log()
            log.write(lo, hi, idx, deps)
        deps.discard(idx)
        return tuple(sorted(deps)) if len(deps) > 1 else tuple(deps)


def replayed_deps(entries, readonly: dict[int, tuple[int, int]]) -> list[tuple[int, ...]]:
    """The dependency tokens of what a Recorder kept, as an empty emitter with these constant
    ranges would give them, emitting it in order (the instructions themselves are not copied:
    the event model takes the tokens beside them, `cost.timing.simulate(deps=)`)."""
    track = Emitter(readonly=dict(readonly))._deps
    return [track(reads, writes, i) for i, (_, reads, writes) in enumerate(entries)]


def moved(entries: list, source: list, target: list) -> list:
    """Recorded entries with each byte range inside a tensor placed at `source` (tensor,
    space, address, bytes) moved to where `target` places that tensor. Tensors sharing bytes
    keep their relative offsets in both (the record's key), so they move alike."""
    to = {t: a for t, _, a, _ in target}
    shifts: dict[int, list[tuple[int, int, int]]] = {}
    for t, space, a, n in source:
        if to[t] != a:
            shifts.setdefault(space, []).append((a, a + max(n, 1), to[t] - a))
    if not shifts:
        return entries

    def move(spans):
        out = []
        for span in spans:
            for a, b, by in shifts.get(span[0], ()):
                if a <= span[1] < b:
                    span = (span[0], span[1] + by, span[2] + by)
                    break
            out.append(span)
        return out
    return [(ins, move(reads), move(writes)) for ins, reads, writes in entries]


def flipped(entries: list, log: list) -> tuple[list, list] | None:
    """A recording's entries as its emission with every step's SRAM slots from the other end,
    and that emission's slot log, or None where a range in slot memory lies in no one slot of
    the allocators of the latest `Ctx.slots()` call before it (the emitters take fresh
    allocators per layer, batch or group and use no earlier ones' slots after). Allocation
    from either end takes the same slots in the same order (`SramSlots.take`): slot [a, a + n)
    of an allocator over `size` bytes is taken at size - a - n from the other end, so every
    range inside it moves by size - 2a - n; ranges outside slot memory (off-chip, resident
    activations) stay."""
    starts = [start for start, _ in log]
    where: list[dict[int, list[tuple[int, int, int]]]] = []
    for _, slots in log:
        by_space: dict[int, list[tuple[int, int, int]]] = {}
        for space, a, n, size in slots:
            by_space.setdefault(space, []).append((a, a + n, size - 2 * a - n))
        where.append(by_space)
    limit = {space: size for _, slots in log for space, _, _, size in slots}
    out = []
    for i, (ins, reads, writes) in enumerate(entries):
        j = bisect.bisect_right(starts, i) - 1
        spans = where[j] if j >= 0 else {}
        moved_spans = []
        for span in (*reads, *writes):
            space, lo, hi = span
            for a, b, by in spans.get(space, ()):
                if a <= lo and hi <= b:
                    span = (space, lo + by, hi + by)
                    break
            else:
                if lo < limit.get(space, 0):     # in slot memory, in no one slot
                    return None
            moved_spans.append(span)
        out.append((ins, moved_spans[:len(reads)], moved_spans[len(reads):]))
    return out, [(start, [(space, size - a - n, n, size) for space, a, n, size in slots]) for start, slots in log]


@dataclass
class Recorder(Emitter):
    """Keeps each instruction (built at once: its maker may read loop variables that change
    next) with the byte ranges it reads and writes (isa.ranges, and a HOST's segment tensors)
    instead of tracking hazards, to be replayed after other instructions (`replayed_deps`)."""
    entries: list = field(default_factory=list)

    def emit(self, make, host_reads: Sequence[Range] = (), host_writes: Sequence[Range] = ()) -> int:
        ins = make(self.layer, ())
        reads: Sequence[Range] = ranges.reads(ins)
        writes: Sequence[Range] = ranges.writes(ins)
        if host_reads or host_writes:
            reads, writes = [*reads, *host_reads], [*writes, *host_writes]
        self.entries.append((ins, reads, writes))
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

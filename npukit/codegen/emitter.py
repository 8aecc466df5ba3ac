"""The instruction emitter: appends instructions and derives their dependency tokens.

Every instruction declares the byte ranges it reads and writes; the tracker adds a wait on
each earlier instruction it conflicts with (read-after-write, write-after-read,
write-after-write). Any order the timing model picks within these waits computes the same
result as program order, which is the order the functional simulator uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..isa import instructions as I

Range = tuple[int, int, int]  # space, lo, hi (exclusive)


@dataclass
class _Access:
    lo: int
    hi: int
    idx: int
    write: bool


@dataclass
class Emitter:
    program: list[I.Instr] = field(default_factory=list)
    _log: dict[int, list[_Access]] = field(default_factory=dict)
    layer: int = 0
    readonly: dict[int, tuple[int, int]] = field(default_factory=dict)  # space -> constant range

    def _is_const(self, space: int, lo: int, hi: int) -> bool:
        r = self.readonly.get(space)
        return r is not None and r[0] <= lo and hi <= r[1]

    def emit(self, make, reads: list[Range], writes: list[Range]) -> int:
        """`make(layer, deps)` builds the instruction; returns its index."""
        idx = len(self.program)
        deps: set[int] = set()
        for space, lo, hi in reads:
            deps.update(a.idx for a in self._log.get(space, ()) if a.write and a.lo < hi and lo < a.hi)
        for space, lo, hi in writes:
            deps.update(a.idx for a in self._log.get(space, ()) if a.lo < hi and lo < a.hi)
        for space, lo, hi in reads:
            if not self._is_const(space, lo, hi):  # constants are never written: no hazard
                self._log.setdefault(space, []).append(_Access(lo, hi, idx, False))
        for space, lo, hi in writes:
            log = self._log.setdefault(space, [])
            # a write that covers an older access supersedes it: later hazards reach it through us
            log[:] = [a for a in log if not (lo <= a.lo and a.hi <= hi)]
            log.append(_Access(lo, hi, idx, True))
        self.program.append(make(self.layer, tuple(sorted(deps))))
        return idx


def span(space: int, addr: int, shape, strides, elem: int) -> Range:
    """The byte range a strided access touches (a superset for gaps)."""
    lo = addr + sum(min(0, s * (n - 1)) for s, n in zip(strides, shape))
    hi = addr + sum(max(0, s * (n - 1)) for s, n in zip(strides, shape)) + elem
    return space, lo, hi


def dma(e: Emitter, src_space, src, src_strides, dst_space, dst, dst_strides, shape, elem) -> int:
    shape = tuple(int(s) for s in ((1,) * (4 - len(shape)) + tuple(shape)))
    src_strides = tuple((0,) * (4 - len(src_strides)) + tuple(src_strides))
    dst_strides = tuple((0,) * (4 - len(dst_strides)) + tuple(dst_strides))
    return e.emit(lambda layer, deps: I.Dma(layer, deps, src_space, src, src_strides, dst_space, dst,
                                            dst_strides, shape, elem),
                  [span(src_space, src, shape, src_strides, elem)],
                  [span(dst_space, dst, shape, dst_strides, elem)])


def contiguous(e: Emitter, src_space, src, dst_space, dst, nbytes: int) -> int:
    return dma(e, src_space, src, (0, 0, 0, 0), dst_space, dst, (0, 0, 0, 0), (1, 1, 1, 1), nbytes)

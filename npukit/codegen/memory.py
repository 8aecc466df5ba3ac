"""Off-chip memory plan: activation arena by live ranges, and the constant image."""
from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from ..ir.graph import Graph, Op
from ..isa import instructions as I
from ..isa import wcodec
from ..isa.instructions import ALIGN
from .reuse import Reuse



def _align(n: int, a: int = ALIGN) -> int:
    return (n + a - 1) // a * a


@dataclass(frozen=True)
class Placement:
    space: int
    addr: int


@dataclass
class ConstImage:
    """Constants of one region, appended at `base` (after the arena when they share a region).

    With `compress`, a block added as `packable` (one only ever loaded whole into WBUF) is
    stored as its wcodec stream when that is shorter; `packed` maps its address to
    (raw bytes, stream bytes), which the DMA emitter turns into a decompressing load."""
    space: int
    base: int
    compress: bool = False
    estimate: float | None = None   # scratch images: a packable block's stream is taken as this
    #                                 fraction of its bytes instead of being encoded, and no bytes are kept
    data: bytearray = field(default_factory=bytearray)
    size: int = 0                                 # bytes placed (of `data`, when kept)
    packed: dict = field(default_factory=dict)    # address -> (raw bytes, stream bytes)
    _seen: dict = field(default_factory=dict)     # (packable, bytes) -> address: identical blocks stored once
    reuse: Reuse | None = None                    # streams shared with other compiles (their caller's)

    def add(self, array: np.ndarray, packable: bool = False) -> int:
        return self.add_many([array], packable)[0]

    def add_many(self, arrays: list[np.ndarray], packable: bool = False) -> list[int]:
        """The addresses of blocks added one after the other (as `add` each), the new
        compressed ones encoded together (`wcodec.encode_many`)."""
        raws = [np.asarray(a).tobytes() for a in arrays]     # C order, one copy
        pack = packable and self.compress
        streams: dict[bytes, bytes] = {}
        if pack and self.estimate is None:
            new = list(dict.fromkeys(r for r in raws if (True, r) not in self._seen))
            found = self.reuse.encode_many(new) if self.reuse is not None else wcodec.encode_many(new)
            streams = dict(zip(new, found))
        return [self._place(raw, pack, streams.get(raw)) for raw in raws]

    def _place(self, raw: bytes, pack: bool, stream: bytes | None) -> int:
        key = (pack, raw)
        if key in self._seen:
            return self._seen[key]
        addr = self.base + _align(self.size)
        if self.estimate is not None:       # a scratch image: sizes and addresses only
            n = len(raw)
            if pack and self.estimate < 1.0:
                n = max(1, int(n * self.estimate + 0.5))
                self.packed[addr] = (len(raw), n)
        else:
            stored = stream if pack and stream is not None and len(stream) < len(raw) else raw
            self.data.extend(b"\0" * (addr - self.base - len(self.data)))
            self.data.extend(stored)
            n = len(stored)
            if stored is not raw:
                self.packed[addr] = (len(raw), n)
        self.size = addr - self.base + n
        self._seen[key] = addr
        return addr

    def fresh(self, estimate: float | None = None) -> ConstImage:
        """An empty image with the same place and policy (for scratch lowerings); with
        `estimate`, compressed blocks are sized by that ratio, not encoded."""
        return ConstImage(self.space, self.base, self.compress, estimate, reuse=self.reuse)

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class ArenaPlan:
    space: int
    size: int
    where: dict[str, Placement]
    ranges: dict[str, tuple[int, int]] = field(default_factory=dict)   # tensor -> live (first, last) layer
    aliases: dict[str, str] = field(default_factory=dict)              # tensor -> the one whose bytes it shares


def alias_roots(g: Graph) -> dict[str, str]:
    """RESHAPE outputs share their input's bytes (same quantisation, same order)."""
    root: dict[str, str] = {}
    for node in g.nodes:
        if node.op is Op.RESHAPE:
            src = node.inputs[0]
            root[node.outputs[0]] = root.get(src, src)
    return root


def live_ranges(g: Graph) -> tuple[dict[str, int], dict[str, int], dict[str, str]]:
    """(first, last) node index of every activation tensor (aliases resolved), and the aliases."""
    root = alias_roots(g)
    first: dict[str, int] = {t: -1 for t in g.inputs}
    last: dict[str, int] = {}
    for i, node in enumerate(g.nodes):
        for t in node.outputs:
            first.setdefault(root.get(t, t), i)
        for t in node.inputs:
            if not g.tensors[t].is_const:
                last[root.get(t, t)] = i
    for t in g.outputs:
        last[root.get(t, t)] = len(g.nodes)
    for t in g.inputs:  # inputs must stay intact: a program may be run many times
        last[t] = len(g.nodes)
    for t in g.variables:  # persistent state: its own bytes for the program's whole life
        first[t], last[t] = -1, len(g.nodes)
    return first, {t: last.get(t, first[t]) for t in first}, root


def first_fit(tensors: list[str], first, last, nbytes, limit: int | None = None) -> dict[str, int]:
    """Offsets by first fit over live ranges; tensors that would end beyond `limit` are left out."""
    live: list[tuple[int, int, int, int]] = []   # (start, end, offset, size)
    where: dict[str, int] = {}
    for t in sorted(tensors, key=lambda t: (first[t], -nbytes(t))):
        lo, hi, n = first[t], last[t], _align(max(nbytes(t), 1))
        busy = sorted((o, o + s) for a, b, o, s in live if a <= hi and lo <= b)
        offset = 0
        for o, e in busy:
            if offset + n <= o:
                break
            offset = max(offset, e)
        if limit is not None and offset + n > limit:
            continue
        live.append((lo, hi, offset, n))
        where[t] = offset
    return where


def plan_arena(g: Graph, space: int, onchip_base: int = 0, onchip_bytes: int = 0,
               pinned: AbstractSet[str] = frozenset(), fused: AbstractSet[int] = frozenset()) -> ArenaPlan:
    """Place every activation tensor: intermediates that fit stay in ABUF's resident area
    [onchip_base, onchip_base + onchip_bytes); the rest (and all graph inputs, outputs and
    state) get off-chip offsets in `space`, each by first fit over live ranges. `fused`:
    nodes i that run together with node i + 1 (their tensors are live over both steps, and
    the one between them is never materialised, so it gets no place)."""
    first, last, root = live_ranges(g)
    for i in fused:
        first.pop(g.nodes[i].outputs[0], None)
    for t in first:
        while last[t] in fused:     # a chain of fused nodes runs as one step
            last[t] += 1
        while first[t] - 1 in fused:
            first[t] -= 1
    nbytes = lambda t: g.tensors[t].nbytes  # noqa: E731
    keep = {root.get(t, t) for t in (*pinned, *g.inputs, *g.outputs, *g.variables)}
    onchip = first_fit([t for t in first if t not in keep], first, last, nbytes, onchip_bytes) \
        if onchip_bytes > 0 else {}
    offchip = first_fit([t for t in first if t not in onchip], first, last, nbytes)
    where = {t: Placement(I.ABUF, onchip_base + o) for t, o in onchip.items()}
    where |= {t: Placement(space, o) for t, o in offchip.items()}
    size = max((o + _align(max(nbytes(t), 1)) for t, o in offchip.items()), default=0)
    ranges = {t: (first[t], last[t]) for t in where}
    for t, r in root.items():
        where[t] = where[r]
    return ArenaPlan(space, _align(size), where, ranges, dict(root))

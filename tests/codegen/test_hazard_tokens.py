"""The emitter's dependency tokens against a byte-by-byte oracle: an access waits on the last
writer of each byte it touches, and a write also on every reader of its bytes since that
writer (`Emitter._deps`, replayed by `replayed_deps`)."""
from __future__ import annotations

import random

from npukit.codegen.emitter import replayed_deps


def _oracle(accesses: list[tuple[list, list]], readonly: dict) -> list[tuple[int, ...]]:
    last_write: dict[tuple[int, int], int] = {}
    readers: dict[tuple[int, int], set[int]] = {}
    out = []
    for idx, (reads, writes) in enumerate(accesses):
        deps: set[int] = set()
        for space, lo, hi in reads:
            r = readonly.get(space)
            if r is not None and r[0] <= lo and hi <= r[1]:
                continue
            for b in range(lo, hi):
                if (space, b) in last_write:
                    deps.add(last_write[space, b])
        for space, lo, hi in writes:
            for b in range(lo, hi):
                if (space, b) in last_write:
                    deps.add(last_write[space, b])
                deps |= readers.get((space, b), set())
        for space, lo, hi in reads:
            for b in range(lo, hi):
                readers.setdefault((space, b), set()).add(idx)
        for space, lo, hi in writes:
            for b in range(lo, hi):
                last_write[space, b] = idx
                readers[space, b] = set()
        deps.discard(idx)
        out.append(tuple(sorted(deps)))
    return out


def _span(rng: random.Random, space: int) -> tuple[int, int, int]:
    lo = rng.randrange(0, 96)
    return space, lo, lo + rng.choice((1, 2, 5, 8, 17, 40, 90))


def test_tokens_equal_the_byte_oracle_on_random_accesses():
    readonly = {1: (64, 200)}
    for seed in range(60):
        rng = random.Random(seed)
        accesses = []
        for _ in range(120):
            reads = [_span(rng, rng.choice((0, 1))) for _ in range(rng.randrange(0, 3))]
            writes = [_span(rng, 0) for _ in range(rng.randrange(0, 2))]
            accesses.append((reads, writes))
        got = replayed_deps([(None, r, w) for r, w in accesses], readonly)
        assert got == _oracle(accesses, readonly), seed

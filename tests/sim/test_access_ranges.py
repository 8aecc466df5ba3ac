"""The ISA's reads and writes (isa.ranges) against what the simulator's semantics touch.

For random instances of every opcode on a random machine state S: run it (result R), then run
it from S' = S with every byte outside the declared reads inverted (result R'). Then
- the declared writes hold the same bytes in R and R': the outputs depend on the declared
  reads alone, and every declared written byte is written (S and S' differ there, unless read);
- every byte outside the declared writes is as it was, in both runs: nothing else is written.
Written patterns are generated without gaps (a strided pattern's range covers its gaps).
"""
from __future__ import annotations

import numpy as np
import pytest

from instances import OPCODES, SIZE, Gen, machine, state

from npukit.isa.ranges import reads, writes
from npukit.sim.semantics import execute


def _mask(spans) -> dict[int, np.ndarray]:
    out = {s: np.zeros(n, bool) for s, n in SIZE.items()}
    for space, lo, hi in spans:
        out[space][max(lo, 0):max(hi, 0)] = True
    return out


def test_every_opcode_has_a_generator():
    assert {op.__name__.lower() for op in OPCODES} <= {n for n in dir(Gen) if not n.startswith("_")}


@pytest.mark.parametrize("op", OPCODES, ids=lambda op: op.__name__)
def test_reads_and_writes_are_what_the_semantics_touch(op):
    for seed in range(40):
        gen = Gen(seed * 1000 + OPCODES.index(op))
        ins = getattr(gen, op.__name__.lower())()
        s0 = state(gen, seed)
        read, written = _mask(reads(ins)), _mask(writes(ins))
        s1 = {s: np.where(read[s], v, v ^ 0xFF) for s, v in s0.items()}
        results = []
        for st in (s0, s1):
            m = machine(st)
            execute(m, ins)
            results.append(m.mem)
        r0, r1 = results
        for s in SIZE:
            w = written[s]
            assert (r0[s][w] == r1[s][w]).all(), f"{ins}: written bytes of space {s} depend on unread bytes"
            assert (r0[s][~w] == s0[s][~w]).all() and (r1[s][~w] == s1[s][~w]).all(), \
                f"{ins}: bytes of space {s} outside its writes changed"

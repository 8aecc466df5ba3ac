"""Every fast path of the simulator against the plain definition of its instruction.

sim/semantics.py lowers an instruction to micro-ops, prepared plans, compiled kernels, a
256 x 256 table or the exact int8 GEMM where their conditions hold; sim/plain.py says once
what each instruction does, applying the integer kernels directly. On random instances of
every opcode and random machine states, the whole machine after the lowered steps (with the
float32 kernels, with the int8 GEMM, and with the operands the constant analysis would give)
equals the machine after the plain definition's action. The plain definition reads every
operand before it writes; a fast path may stream, so an output that partly overlaps an input
(which the compiler never emits) is left out.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from instances import OPCODES, SIZE, Gen, machine, state

from npukit.isa import instructions as I
from npukit.isa import wcodec
from npukit.isa.ranges import reads, writes
from npukit.sim import gemm_int8, plain
from npukit.sim.plan import Plan
from npukit.sim.semantics import FAST, lower

GEMM = gemm_int8.backend()


def _known(m, ins: I.Instr) -> np.ndarray | None:
    """What sim/constants.py would give: a compressed DMA's elements, an int8 CONV's weights as
    the [depth, k] matrix."""
    if isinstance(ins, I.Dma) and ins.codec:
        return wcodec.decode(m.view(ins.src_space, ins.src, (ins.packed,), np.uint8), int(np.prod(ins.shape)) * ins.elem)
    if isinstance(ins, I.Conv) and ins.in_bytes == 1:
        depth = ins.kernel[0] * ins.kernel[1] * ins.c_len
        return np.ascontiguousarray(m.view(I.WBUF, ins.wgt, (ins.k, depth)).T)
    return None


def _streams_into_itself(ins: I.Instr) -> bool:
    """Whether an output range overlaps an input range other than exactly (in place)."""
    return any(w.space == r.space and w.lo < r.hi and r.lo < w.hi and (w.lo, w.hi) != (r.lo, r.hi)
               for w in writes(ins) for r in reads(ins))


def _run_fast(s0, ins: I.Instr, gemm, known: bool) -> dict[int, np.ndarray]:
    m = machine(s0)
    m.gemm = gemm
    steps = lower(m, ins, known=_known(m, ins) if known else None)
    plan = Plan([steps], [type(ins).__name__])
    plan.run(plan.program)
    return m.mem


def test_every_instruction_has_one_plain_definition():
    assert set(plain.BINDERS) == set(OPCODES) and set(FAST) <= set(plain.BINDERS)


@pytest.mark.parametrize("op", sorted(FAST, key=lambda op: op.__name__), ids=lambda op: op.__name__)
def test_fast_paths_equal_the_plain_definition(op):
    ways = [(None, False), (None, True)] + ([(GEMM, False), (GEMM, True)] if GEMM is not None else [])
    checked = 0
    for seed in range(60):
        gen = Gen(seed * 7919 + 17)
        ins = getattr(gen, op.__name__.lower())()
        if _streams_into_itself(ins) and not isinstance(ins, I.Dma):    # a DMA reads all first
            continue
        checked += 1
        s0 = state(gen, seed)
        m = machine(s0)
        plain.BINDERS[op](m, ins)()
        for gemm, known in ways:
            got = _run_fast(s0, ins, gemm, known)
            for s in SIZE:
                assert (got[s] == m.mem[s]).all(), f"{ins} (int8 GEMM {gemm is not None}, known {known}): " \
                                                   f"space {s} differs from the plain definition"
    assert checked >= 40


def test_16x8_pointwise_conv_fast_path_equals_the_plain_definition():
    """A 1x1 int16 CONV (a fully connected tile) takes the float64 product; random int16
    inputs and weights over whole memory spaces, with and without accumulation."""
    for seed in range(40):
        gen = Gen(seed * 104729 + 5)
        ins = gen.conv()
        ins = replace(ins, src=0, wgt=0, dst=0, kernel=(1, 1), stride=(1, 1), in_dil=(1, 1), pad_t=0, pad_l=0,
                      out_h=ins.in_h, out_w=ins.in_w, in_bytes=2, zp=0)
        s0 = state(gen, seed)
        m = machine(s0)
        plain.BINDERS[I.Conv](m, ins)()
        got = _run_fast(s0, ins, None, False)
        for s in SIZE:
            assert (got[s] == m.mem[s]).all(), f"{ins}: space {s} differs from the plain definition"

"""The event model's instruction charges kept across programs (`simulate(..., charges=)`, as the
scheduler's memo keeps them) give the timeline and counts of a fresh run: a table filled by
other programs, whose DMAs move the same sizes at other addresses, changes nothing; and each
instruction's busy cycles and counted actions are its own closed forms (`_Model.latency`,
`port_use`), worked out without any table."""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from npukit.arch import load_arch
from npukit.codegen.context import CompileOptions
from npukit.codegen.lower import lower_program
from npukit.codegen.replay import _Replay
from npukit.compiler import compile_graph, load_model
from npukit.cost.timing import Counts, _Model, instruction_counts, simulate
from npukit.isa import instructions as I

MODEL = Path(__file__).resolve().parents[1] / "data" / "mlperf_tiny" / "ds_cnn.tflite"


def _moved(ins: I.Instr) -> I.Instr:
    """The instruction without dependencies; a DMA at other addresses (same spaces, strides, sizes)."""
    if isinstance(ins, I.Dma):
        return dataclasses.replace(ins, deps=(), src=ins.src + 64, dst=ins.dst + 128)
    return dataclasses.replace(ins, deps=())


@pytest.mark.parametrize("preset", ["u55-256", "npu-m"])
def test_shared_charges_time_as_a_fresh_run(preset):
    arch = load_arch(preset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, qg, _ = compile_graph(load_model(MODEL, None), arch, None, sqnr=False)
    prog = lower_program(qg, arch, CompileOptions(), {})
    fresh = simulate(prog, arch)
    charges: dict = {}
    half = prog.instructions[len(prog.instructions) // 2:]
    simulate(_Replay([_moved(ins) for ins in half], layers=prog.layers), arch, charges)   # fills the table
    assert charges
    shared = simulate(prog, arch, charges)
    assert shared.total_cycles == fresh.total_cycles
    for a, b in ((shared.start, fresh.start), (shared.end, fresh.end), (shared.engine, fresh.engine),
                 (shared.busy, fresh.busy)):
        np.testing.assert_array_equal(a, b)
    assert len(shared.counts) == len(fresh.counts)
    for c, d in zip(shared.counts, fresh.counts):
        assert (c.macs, c.vpu_ops, c.host_elements, c.host_cpu_cycles) == (d.macs, d.vpu_ops, d.host_elements,
                                                                            d.host_cpu_cycles)
        assert list(c.sram_bytes.items()) == list(d.sram_bytes.items())      # same tallies, same order
        assert list(c.region_bytes.items()) == list(d.region_bytes.items())
    model = _Model(prog, arch)
    own = instruction_counts(prog, arch)
    for i, ins in enumerate(prog.instructions):
        if isinstance(ins, I.Host):
            continue
        uses = model.port_use(ins)
        assert shared.busy[i] == (max(p for _, _, p in uses) if uses else model.latency(ins, Counts()))
    for layer, c in enumerate(shared.counts):
        mine = [own[i] for i, ins in enumerate(prog.instructions) if ins.layer == layer]
        assert c.macs == sum(d.macs for d in mine) and c.vpu_ops == sum(d.vpu_ops for d in mine)
        for space in {s for d in mine for s in d.sram_bytes}:
            assert c.sram_bytes[space] == sum(d.sram_bytes.get(space, 0) for d in mine)
        for name in {r for d in mine for r in d.region_bytes}:
            assert c.region_bytes[name] == sum(d.region_bytes.get(name, 0) for d in mine)


def test_dependencies_given_apart_time_as_the_instructions_own():
    """`simulate(deps=)` (the scheduler's windows: recorded instructions, tokens beside them)
    gives the timeline of the same instructions carrying those tokens themselves."""
    arch = load_arch("u55-256")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, qg, _ = compile_graph(load_model(MODEL, None), arch, None, sqnr=False)
    prog = lower_program(qg, arch, CompileOptions(), {})
    bare = _Replay([dataclasses.replace(ins, deps=()) for ins in prog.instructions], layers=prog.layers)
    own = simulate(prog, arch)
    apart = simulate(bare, arch, deps=[ins.deps for ins in prog.instructions])
    assert simulate(bare, arch).total_cycles < own.total_cycles      # the tokens matter here
    assert apart.total_cycles == own.total_cycles
    for a, b in ((apart.start, own.start), (apart.end, own.end), (apart.busy, own.busy)):
        np.testing.assert_array_equal(a, b)

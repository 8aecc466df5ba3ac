"""The simulator decodes a program once and runs it many times: what persists between runs
(the off-chip regions) and what does not (the SRAMs), and where a corrupt binary is caught."""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

import npukit
from npukit.arch import load_arch
from npukit.errors import BinaryError
from npukit.isa import instructions as I
from npukit.sim.functional import Simulator

from cases import conv_model


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    rng = np.random.default_rng(3)
    path = tmp_path_factory.mktemp("m") / "m.onnx"
    path.write_bytes(conv_model(rng, c=3, k=5, h=9, w=7, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                                pads=[1, 1, 1, 1], groups=1, relu=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npukit.compile(path, "npu-s", calibration={"x": rng.standard_normal((4, 1, 3, 9, 7)).astype(np.float32)})


def _sim(prog) -> Simulator:
    a = load_arch("npu-s")
    return Simulator(prog, {I.ABUF: a.abuf_bytes, I.WBUF: a.wbuf_bytes, I.ACC: a.acc_bytes})


def _feed(seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).integers(-128, 128, (1, 3, 9, 7)).astype(np.int8)}


def test_runs_are_independent_of_what_ran_before(compiled):
    """A fresh simulator and one that has run other inputs give the same outputs."""
    warm = _sim(compiled.program)
    for seed in range(3):
        warm.run(_feed(seed + 10))
    for seed in range(3):
        fresh = _sim(compiled.program).run(_feed(seed))
        again = warm.run(_feed(seed))
        assert all(np.array_equal(fresh[k], again[k]) for k in fresh)


def test_sram_is_cleared_between_runs(compiled):
    sim = _sim(compiled.program)
    sim.run(_feed(0))
    m, _ = sim._bind()
    assert any(mem.any() for mem in m.sram)        # the run left data in the SRAMs
    m.clear_sram()
    assert not any(mem.any() for mem in m.sram)


def test_reset_restores_region_images_in_place(compiled):
    sim = _sim(compiled.program)
    sim.run(_feed(0))
    region = sim.state[0]
    region[:] = 0x5A                                  # what a stateful program's writes would do
    sim.reset()
    assert sim.state[0] is region
    assert np.array_equal(region, np.frombuffer(compiled.program.regions[0].image, np.uint8))


def test_out_of_bounds_instruction_raises_binary_error_before_running(compiled):
    prog = compiled.program
    i = next(n for n, ins in enumerate(prog.instructions) if isinstance(ins, I.Dma))
    bad = dataclasses.replace(prog.instructions[i], src=10 ** 9)
    broken = dataclasses.replace(prog, instructions=[*prog.instructions[:i], bad, *prog.instructions[i + 1:]])
    sim = _sim(broken)
    with pytest.raises(BinaryError, match="outside space"):
        sim.run(_feed(0))
    with pytest.raises(BinaryError, match="outside space"):   # and again: nothing half-bound is kept
        sim.run(_feed(0))


def test_seconds_by_kind_counts_every_instruction(compiled):
    feed = {"x": np.random.default_rng(5).standard_normal((1, 3, 9, 7)).astype(np.float32)}
    timed = compiled.seconds_by_kind(feed)
    kinds = {}
    for ins in compiled.program.instructions:
        kinds[type(ins).__name__] = kinds.get(type(ins).__name__, 0) + 1
    assert {k: n for k, (n, _) in timed.items()} == kinds
    assert all(s >= 0 for _, s in timed.values())

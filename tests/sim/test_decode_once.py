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

from cases import conv_model, vector_model


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
    region = sim._state[0]
    region[:] = 0x5A                                  # what a stateful program's writes would do
    sim.reset()
    assert sim._state[0] is region
    assert np.array_equal(region, np.frombuffer(compiled.program.regions[0].image, np.uint8))


def test_regions_are_read_only_from_outside(compiled):
    """Only instructions write the regions: the bytes they never write are bound once as constants."""
    sim = _sim(compiled.program)
    sim.run(_feed(0))
    with pytest.raises(ValueError, match="read-only"):
        sim.state[0][:] = 0


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


def _conv_weight_sources(prog) -> list[tuple[int, np.ndarray]]:
    """(region index, byte offsets) of the off-chip bytes that DMAs copy into CONV weights."""
    ranges = [(c.wgt, c.wgt + c.k * c.kernel[0] * c.kernel[1] * c.c_len) for c in prog.instructions
              if isinstance(c, I.Conv)]
    region_of = {r.space: i for i, r in enumerate(prog.regions)}
    found = []
    for d in prog.instructions:
        if not (isinstance(d, I.Dma) and d.dst_space == I.WBUF and d.src_space in region_of):
            continue
        idx = np.indices(d.shape).reshape(len(d.shape), -1)
        src = (d.src + (np.array(d.src_strides)[:, None] * idx).sum(0))[:, None] + np.arange(d.elem)
        dst = (d.dst + (np.array(d.dst_strides)[:, None] * idx).sum(0))[:, None] + np.arange(d.elem)
        hit = np.zeros(dst.shape, bool)
        for lo, hi in ranges:
            hit |= (dst >= lo) & (dst < hi)
        found.append((region_of[d.src_space], src[hit]))
    return found


def test_new_weights_in_the_same_wbuf_bytes_are_not_served_stale(compiled):
    """A warm simulator whose weights change between runs (same program, same WBUF addresses,
    other bytes) computes what a fresh simulator of the changed program computes: the paths a
    program that writes its weights' source takes (no constants folded)."""
    prog = compiled.program
    images = [np.frombuffer(r.image, np.uint8).copy() for r in prog.regions]
    sources = _conv_weight_sources(prog)
    assert sum(s.size for _, s in sources) > 0
    for i, offsets in sources:
        images[i][offsets] = (-images[i][offsets].view(np.int8).clip(-127)).view(np.uint8)
    changed = dataclasses.replace(prog, regions=[dataclasses.replace(r, image=im.tobytes())
                                                 for r, im in zip(prog.regions, images)])
    warm = _sim(prog)
    warm.fold_constants = False
    before = warm.run(_feed(0))
    for state, im in zip(warm._state, images):
        state[:] = im
    after = warm.run(_feed(0))
    want = _sim(changed).run(_feed(0))
    assert all(np.array_equal(after[k], want[k]) for k in want)
    assert any(not np.array_equal(before[k], want[k]) for k in want)


def test_outputs_do_not_depend_on_blas_threads(tmp_path):
    """Every float32 partial sum is an exact integer, so the order two BLAS threads sum in
    cannot change a bit: a 3x3 conv over 96 channels (per-tap GEMMs of 208 x 96 x 32, large
    enough for BLAS to split) gives the same outputs with one thread and with two."""
    rng = np.random.default_rng(4)
    path = tmp_path / "wide.onnx"
    path.write_bytes(conv_model(rng, c=96, k=64, h=24, w=24, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                                pads=[1, 1, 1, 1], groups=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = npukit.compile(path, "npu-m", calibration={"x": rng.standard_normal((2, 1, 96, 24, 24)).astype(np.float32)})
    a = load_arch("npu-m")
    sram = {I.ABUF: a.abuf_bytes, I.WBUF: a.wbuf_bytes, I.ACC: a.acc_bytes}
    feed = {"x": rng.integers(-128, 128, (1, 96, 24, 24)).astype(np.int8)}
    one, two = Simulator(model.program, sram, threads=1).run(feed), Simulator(model.program, sram, threads=2).run(feed)
    assert all(np.array_equal(one[k], two[k]) for k in one)


@pytest.fixture(scope="module")
def vector_program(tmp_path_factory):
    rng = np.random.default_rng(4)
    path = tmp_path_factory.mktemp("v") / "v.onnx"
    path.write_bytes(vector_model(rng, 4, 12, 12, "MaxPool", (3, 3), (2, 2), [1, 1, 1, 1], "channel", "Sigmoid"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npukit.compile(path, "npu-s", calibration={"x": rng.standard_normal((4, 1, 4, 12, 12)).astype(np.float32)})


def _corruptions(ins):
    """(field, value) pairs: each field, or each element of a tuple field, set to each of a few
    values a corrupt binary might hold."""
    for f in dataclasses.fields(ins):
        if f.name in ("layer", "deps"):
            continue
        old = getattr(ins, f.name)
        for v in (-(1 << 40), -1, 0, 65535, 1 << 40):
            if isinstance(old, tuple):
                yield from ((f.name, old[:at] + (v,) + old[at + 1:]) for at in range(len(old)))
            else:
                yield f.name, v


@pytest.mark.parametrize("which", ["conv", "vector"])
def test_corrupt_fields_give_binary_errors(compiled, vector_program, which):
    """Every field of the first instruction of each kind (or one element of it) set to values a
    corrupt binary might hold: the run either works or raises BinaryError, never another
    exception, a huge allocation or a hang (the micro-op rows hold raw addresses, so every
    range must have been checked when the program was bound)."""
    prog = (compiled if which == "conv" else vector_program).program
    firsts = {}
    for i, ins in enumerate(prog.instructions):
        if not isinstance(ins, I.Host):
            firsts.setdefault(type(ins), i)
    x = {prog.inputs[0].name: np.random.default_rng(0).integers(-128, 128, prog.inputs[0].shape).astype(np.int8)}
    for i in firsts.values():
        for name, value in _corruptions(prog.instructions[i]):
            bad = dataclasses.replace(prog.instructions[i], **{name: value})
            broken = dataclasses.replace(prog, instructions=[*prog.instructions[:i], bad, *prog.instructions[i + 1:]])
            try:
                _sim(broken).run(x)
            except BinaryError:
                pass


_SEGMENT = {"kind": "add", "name": "a", "attrs": {}, "params_kind": None, "params": None, "inputs": [], "outputs": []}


@pytest.mark.parametrize("record", [{"bogus": 1}, 5, {"node": {}, "inputs": [],
                                                    "output": {"space": 3, "addr": 0, "shape": "x", "dtype": "int8"}},
                                    {**_SEGMENT, "kind": "no_such_op"},
                                    {**_SEGMENT, "params_kind": "mul", "params": {}},
                                    {**_SEGMENT, "kind": "pad", "attrs": {"pads": "x"}},
                                    {**_SEGMENT, "attrs": {"act": {"lo": 0.0, "nope": 1}}}])
def test_malformed_host_segment_is_a_binary_error(compiled, record):
    """A host segment record that is valid JSON but not a segment (a crafted file passes the
    container's CRCs) is named, not a KeyError or TypeError."""
    prog = dataclasses.replace(compiled.program, host_segments=[record],
                               instructions=[*compiled.program.instructions, I.Host(0, (), 0)])
    with pytest.raises(BinaryError, match="host segment 0"):
        _sim(prog).run(_feed(0))

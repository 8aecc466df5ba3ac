"""Products batched across (CONV, REQUANT) pairs (sim/batching.py) leave the machine as the
pairs run one by one leave it: outputs, all of ABUF, the regions, and every ACC byte a later
instruction reads; a group stops where a REQUANT writes a later CONV's input rows."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from npukit.codegen.context import CompileOptions
from npukit.isa import instructions as I
from npukit.sim import batching, gemm_int8
from npukit.sim.constants import known_operands
from npukit.sim.functional import Simulator

from cases import inverted_residual_model
from test_sim_vs_reference import _compile, assert_sim_equals_reference, small_arch

ARCH = small_arch(8, 2, 1, 4, 4, "ws")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """An expansion fused into depthwise bands with 1 KiB of ACC: each band's expanded pixels
    are computed a few at a time, as runs of (CONV, REQUANT) pairs over consecutive rows."""
    rng = np.random.default_rng(11)
    data = inverted_residual_model(rng, 4, 6, 4, 12, 12, (3, 3), (2, 2), (1, 1), False)
    opts = CompileOptions(onchip_fraction=0.0, timed_candidates=1, fuse_depthwise="always", fuse_expansion="always")
    return _compile(tmp_path_factory.mktemp("b"), data, ARCH, opts, None)


def _state_after(prog, x, order=None) -> tuple[dict, np.ndarray, list[np.ndarray]]:
    sim = Simulator(prog, {I.ABUF: ARCH.abuf_bytes, I.WBUF: ARCH.wbuf_bytes, I.ACC: ARCH.acc_bytes})
    out = sim.run(x, order)
    m, _ = sim._bind()
    return out, m.mem[I.ABUF].copy(), [s.copy() for s in sim.state]


def _same_state(prog, seed: int) -> None:
    x = {prog.inputs[0].name: np.random.default_rng(seed).integers(-128, 128, prog.inputs[0].shape).astype(np.int8)}
    batched = _state_after(prog, x)
    one_by_one = _state_after(prog, x, list(range(len(prog.instructions))))
    for name in batched[0]:
        np.testing.assert_array_equal(batched[0][name], one_by_one[0][name])
    np.testing.assert_array_equal(batched[1], one_by_one[1])
    for a, b in zip(batched[2], one_by_one[2]):
        np.testing.assert_array_equal(a, b)


def test_groups_batch_and_leave_the_same_state(compiled):
    prog = compiled.program
    groups = batching.find_groups(prog.instructions, known_operands(prog, ARCH.wbuf_bytes))
    assert groups and max(g.stop - g.start for g in groups) >= 6          # three pairs or more in one call
    sim = Simulator(prog, {I.ABUF: ARCH.abuf_bytes, I.WBUF: ARCH.wbuf_bytes, I.ACC: ARCH.acc_bytes})
    sim.run({prog.inputs[0].name: np.zeros(prog.inputs[0].shape, np.int8)})
    _, plan = sim._bind()
    products = lambda calls: sum(type(c).__name__ == "BoundGemm" for c in calls)   # noqa: E731
    n_convs = sum(isinstance(i, I.Conv) for i in prog.instructions)
    if gemm_int8.backend() is not None:     # (the batched products are the exact int8 GEMM's: x86 without VNNI has none)
        assert products(plan.program) == n_convs - sum((g.stop - g.start) // 2 - 1 for g in groups)
    _same_state(prog, 0)
    assert_sim_equals_reference(compiled, [{"x": np.random.default_rng(1).standard_normal((1, 4, 12, 12))
                                            .astype(np.float32)}])


def test_accumulators_read_after_a_group_are_written(compiled):
    """A REQUANT inserted after each group re-reads its last CONV's accumulators: had the group
    left ACC stale, its rows would change."""
    prog = compiled.program
    groups = batching.find_groups(prog.instructions, known_operands(prog, ARCH.wbuf_bytes))
    ins = list(prog.instructions)
    for g in reversed(groups):
        ins.insert(g.stop, dataclasses.replace(ins[g.stop - 1]))
    again = dataclasses.replace(prog, instructions=ins)
    assert batching.find_groups(again.instructions, known_operands(again, ARCH.wbuf_bytes))
    _same_state(again, 2)


def _pair(src: int, dst: int, rows: int = 4, c: int = 8, k: int = 6, acc: int = 0):
    conv = I.Conv(0, (), src=src, in_h=1, in_w=rows, c_stride=c, c_off=0, c_len=c, wgt=0, dst=acc, out_h=1,
                  out_w=rows, k=k, kernel=(1, 1), stride=(1, 1), dilation=(1, 1), in_dil=(1, 1), pad_t=0, pad_l=0,
                  zp=0, accumulate=0, dataflow=0)
    req = I.Requant(0, (), src=acc, n_pix=rows, k=k, params=512, dst=dst, dst_pix_stride=k, dst_c_off=0, out_zp=0,
                    act_min=-128, act_max=127, mode=0)
    return [conv, req]


def test_a_group_stops_where_a_requant_writes_a_later_input():
    w = np.zeros((8, 6), np.int8)
    apart = _pair(0, 1000) + _pair(32, 1024, acc=96) + _pair(64, 1048)
    assert batching.find_groups(apart, {0: w, 2: w, 4: w}) == [batching.Group(0, 6)]
    clash = _pair(0, 64) + _pair(32, 88, acc=96) + _pair(64, 112)     # the first REQUANT writes the third input
    assert batching.find_groups(clash, {0: w, 2: w, 4: w}) == [batching.Group(0, 4)]
    other = {0: w, 2: w, 4: w.copy()}                                  # other weights: no longer one product
    assert batching.find_groups(apart, other) == [batching.Group(0, 4)]


def test_read_later_scans_until_overwritten():
    prog = type("P", (), {})()
    prog.outputs = []
    mask = np.zeros(256, bool)
    mask[0:96] = True
    conv, req = _pair(0, 1000)
    prog.instructions = [req]                                           # reads ACC 0..96
    assert batching._read_later(prog, 0, mask)
    prog.instructions = [conv, req]                                     # overwritten first
    assert not batching._read_later(prog, 0, mask)
    prog.instructions = [dataclasses.replace(conv, accumulate=1), req]  # an accumulating CONV reads
    assert batching._read_later(prog, 0, mask)
    prog.instructions = []
    assert not batching._read_later(prog, 0, mask)

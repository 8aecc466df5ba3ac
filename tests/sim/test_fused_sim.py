"""A depthwise convolution fused with the 1x1 convolution after it (row bands, the
intermediate kept in ABUF) must compute exactly what the integer reference computes.

Hypothesis draws MobileNetV2-like blocks and small architectures, so bands, channel chunks
and output-channel blocks rarely divide the layer evenly, with the block's tensors both
resident in ABUF and off chip.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npukit.codegen.context import CompileOptions
from npukit.errors import InputError
from npukit.isa import instructions as I

from cases import inverted_residual_model, model
from onnx import helper
from test_sim_vs_reference import _compile, assert_sim_equals_reference, small_arch


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), c=st.integers(1, 6), expand=st.sampled_from([1, 3, 6]), k=st.integers(1, 9),
       h=st.integers(3, 13), w=st.integers(3, 13), kernel=st.sampled_from([(1, 1), (3, 3), (5, 5), (3, 1)]),
       stride=st.sampled_from([(1, 1), (2, 2), (2, 1)]), dilation=st.sampled_from([(1, 1), (2, 2)]),
       residual=st.booleans(), abuf=st.sampled_from([1, 2, 4, 8]), mxu=st.sampled_from([(4, 4), (8, 8), (4, 8)]),
       dataflow=st.sampled_from(["ws", "os", "auto"]), rows=st.sampled_from([0, 1, 2, 3]),
       dw_engine=st.sampled_from(["auto", "mxu", "vpu"]), double=st.booleans(),
       onchip=st.sampled_from([0.0, 0.5, 0.75]), timed=st.sampled_from([1, 4]))
def test_fused_block_sim_equals_reference(tmp_path, seed, c, expand, k, h, w, kernel, stride, dilation, residual,
                                          abuf, mxu, dataflow, rows, dw_engine, double, onchip, timed):
    if kernel[0] * dilation[0] > h or kernel[1] * dilation[1] > w:
        dilation = (1, 1)
    residual = residual and stride == (1, 1) and k == c
    rng = np.random.default_rng(seed)
    data = inverted_residual_model(rng, c, expand, k, h, w, kernel, stride, dilation, residual)
    opts = CompileOptions(max_tile_rows=rows, depthwise_engine=dw_engine, double_buffer=double,
                          onchip_fraction=onchip, timed_candidates=timed, fuse_depthwise="always",
                          fuse_expansion="never")
    shape = (1, c, h, w)
    calib = {"x": rng.standard_normal((4,) + shape).astype(np.float32)}
    prog = _compile(tmp_path, data, small_arch(abuf, 2, 2, mxu[0], mxu[1], dataflow), opts, calib)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal(shape).astype(np.float32) * 1.5}])


def _block(tmp_path, options, abuf=4):
    rng = np.random.default_rng(3)
    data = inverted_residual_model(rng, 4, 6, 4, 12, 12, (3, 3), (1, 1), (1, 1), True)
    prog = _compile(tmp_path, data, small_arch(abuf, 2, 2, 4, 4, "ws"), options, None)
    return prog, rng


def test_fusion_happens_and_keeps_the_intermediate_on_chip(tmp_path):
    """The property test is only meaningful if the pair is fused: the depthwise layer's
    DwConvs write ABUF bands that the projection's Convs read, no DMA of either layer
    moves the 12x12x24 intermediate off chip (the unfused program does move it), and the
    input rows two bands share are copied on chip."""
    prog, rng = _block(tmp_path, CompileOptions(max_tile_rows=3, onchip_fraction=0.0, timed_candidates=1,
                                                fuse_depthwise="always", fuse_expansion="never"))
    layers = prog.program.layers
    dw = next(i for i, la in enumerate(layers) if la.tiling.get("kind") == "fused")
    assert layers[dw + 1].tiling == {"fused_into": layers[dw].name}
    ins = prog.program.instructions
    bands = {(d.dst, d.out_h * d.out_w * d.c) for d in ins if isinstance(d, I.DwConv)}
    convs = [x for x in ins if isinstance(x, I.Conv) and x.layer == dw + 1]
    assert convs and all((x.src, x.in_h * x.in_w * x.c_len) in bands for x in convs)
    assert len({d.dst for d in ins if isinstance(d, I.DwConv)}) >= 2     # several bands in flight
    mid_bytes = 12 * 12 * 24
    off = lambda p, layer: sum(int(np.prod(d.shape)) * d.elem for d in p.instructions  # noqa: E731
                               if isinstance(d, I.Dma) and d.layer == layer and d.dst_space >= I.REGION0)
    unfused, _ = _block(tmp_path, CompileOptions(max_tile_rows=3, onchip_fraction=0.0, fuse_depthwise="never"))
    halo = [d for d in ins if isinstance(d, I.Dma) and d.layer == dw and d.src_space == d.dst_space == I.ABUF]
    assert halo       # rows shared by consecutive bands are copied on chip, not loaded again
    assert off(prog.program, dw) == 0
    assert off(unfused.program, dw) == mid_bytes
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 4, 12, 12)).astype(np.float32)}])


@pytest.mark.parametrize("tie", [0.0, 0.01, 0.5])
def test_auto_keeps_the_preferred_program_and_bad_option_is_an_error(tmp_path, tie):
    """`auto` keeps `never` or `always` by the tilings' rule: the fewer cycles; within `tie`
    of them, the less energy (with 0: cycles alone, the minimum of the two)."""
    progs = {mode: _block(tmp_path, CompileOptions(max_tile_rows=3, onchip_fraction=0.0, fuse_depthwise=mode,
                                                   energy_tie=tie, fuse_expansion="never"))[0]
             for mode in ("auto", "always", "never")}
    profiles = {mode: p.profile() for mode, p in progs.items()}
    dynamic = {mode: p.energy_uj - p.energy_breakdown_uj["static"] for mode, p in profiles.items()}
    never, always = ((profiles[m].total_cycles, dynamic[m]) for m in ("never", "always"))
    fast = min(never[0], always[0])
    near = [m for m, (c, _) in (("never", never), ("always", always)) if c <= fast * (1 + tie)]
    want = min(near, key=lambda m: (dynamic[m], m != "never")) if tie else \
        ("never" if never[0] == fast else "always")
    assert profiles["auto"].total_cycles == profiles[want].total_cycles
    assert dynamic["auto"] == pytest.approx(dynamic[want])
    if tie == 0:
        assert profiles["auto"].total_cycles == fast
    with pytest.raises(InputError, match="fuse_depthwise"):
        _block(tmp_path, CompileOptions(fuse_depthwise="yes"))
    with pytest.raises(InputError, match="energy_tie"):
        _block(tmp_path, CompileOptions(energy_tie=-0.1))


def test_bound_counts_no_spill_for_the_inside_of_a_fused_pair(tmp_path):
    """An intermediate larger than all of ABUF is a forced spill (written once, read once)
    for layers run one by one; inside a fused pair it is never stored, so the bound of the
    pair's layers drops by exactly its bytes twice (12 x 12 x 24 int8 > 1 KiB of ABUF).
    Uncompressed weights: the two tilings cut the weights into different blocks."""
    opts = dict(max_tile_rows=1, onchip_fraction=0.0, compress_weights="never")
    fused, _ = _block(tmp_path, CompileOptions(fuse_depthwise="always", **opts), abuf=1)
    alone, _ = _block(tmp_path, CompileOptions(fuse_depthwise="never", **opts), abuf=1)
    assert any(la.tiling.get("kind") == "fused" for la in fused.program.layers)
    total = lambda p: sum(la.min_bytes for la in p.program.layers)  # noqa: E731
    assert total(alone) - total(fused) == 2 * 12 * 12 * 24


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), c=st.integers(1, 6), expand=st.integers(1, 6), k=st.integers(1, 9),
       h=st.integers(3, 13), w=st.integers(3, 13), kernel=st.sampled_from([(3, 3), (5, 5)]),
       stride=st.sampled_from([(1, 1), (2, 2)]), residual=st.booleans(), abuf=st.sampled_from([1, 2, 4, 8]),
       mxu=st.sampled_from([(4, 4), (8, 8), (4, 8)]), dataflow=st.sampled_from(["ws", "os", "auto"]),
       rows=st.sampled_from([0, 1, 2, 3]), dw_engine=st.sampled_from(["auto", "mxu", "vpu"]),
       double=st.booleans(), onchip=st.sampled_from([0.0, 0.5, 0.75]), timed=st.sampled_from([1, 4]),
       acc=st.sampled_from([1, 2]))
def test_expansion_fused_block_sim_equals_reference(tmp_path, seed, c, expand, k, h, w, kernel, stride, residual,
                                                    abuf, mxu, dataflow, rows, dw_engine, double, onchip, timed,
                                                    acc):
    """Expansion, depthwise and projection run band by band (`fuse_expansion="always"`);
    a 1 KiB ACC against up to 8 KiB of ABUF makes the expansion compute a band's rows in
    several groups."""
    if kernel[0] > h or kernel[1] > w:
        kernel = (3, 3)
    residual = residual and stride == (1, 1) and k == c
    rng = np.random.default_rng(seed)
    data = inverted_residual_model(rng, c, expand, k, h, w, kernel, stride, (1, 1), residual)
    opts = CompileOptions(max_tile_rows=rows, depthwise_engine=dw_engine, double_buffer=double,
                          onchip_fraction=onchip, timed_candidates=timed, fuse_depthwise="always",
                          fuse_expansion="always")
    shape = (1, c, h, w)
    calib = {"x": rng.standard_normal((4,) + shape).astype(np.float32)}
    prog = _compile(tmp_path, data, small_arch(abuf, 2, acc, mxu[0], mxu[1], dataflow), opts, calib)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal(shape).astype(np.float32) * 1.5}])


def test_expansion_in_pixel_groups_lets_bands_outgrow_acc(tmp_path):
    """With 1 KiB of ACC, the expansion's accumulators for a band's input rows (12 px a row
    x its channel chunk x 4 B, two buffers) do not fit, yet the bands hold more pixels than
    the groups: each band's pixels are computed a few at a time (several expansion Convs
    per band and chunk, each into ACC, each Requant writing its pixels of the band's slot),
    and the program computes what the reference does."""
    rng = np.random.default_rng(11)
    data = inverted_residual_model(rng, 4, 6, 4, 12, 12, (3, 3), (2, 2), (1, 1), False)
    opts = CompileOptions(onchip_fraction=0.0, timed_candidates=1, fuse_depthwise="always",
                          fuse_expansion="always")
    prog = _compile(tmp_path, data, small_arch(8, 2, 1, 4, 4, "ws"), opts, None)
    layers = prog.program.layers
    ex = next(i for i, la in enumerate(layers) if la.tiling.get("kind") == "fused")
    ins = prog.program.instructions
    convs = [x for x in ins if isinstance(x, I.Conv) and x.layer == ex]
    dws = [d for d in ins if isinstance(d, I.DwConv) and d.layer == ex + 1]
    assert max(x.out_h * x.out_w for x in convs) < max(d.in_h * d.in_w for d in dws)   # a band, in groups
    assert max(4 * x.out_h * x.out_w * x.k for x in convs) * 2 <= 1024
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 4, 12, 12)).astype(np.float32)}])


def _off_chip(program, layer: int) -> int:
    """Bytes a layer's DMAs write to an off-chip region."""
    return sum(int(np.prod(d.shape)) * d.elem for d in program.instructions
               if isinstance(d, I.Dma) and d.layer == layer and d.dst_space >= I.REGION0)


def test_expansion_fusion_keeps_the_expanded_tensor_on_chip(tmp_path):
    """With the expansion fused, its Convs + Requants write the depthwise's input rows into
    the ABUF slots the DwConvs read, and neither it nor the depthwise stores anything off
    chip (the pair-only program, which `never` gives, stores the 12x12x24 expanded tensor)."""
    base = dict(max_tile_rows=3, onchip_fraction=0.0, timed_candidates=1, fuse_depthwise="always")
    prog, rng = _block(tmp_path, CompileOptions(fuse_expansion="always", **base))
    pair, _ = _block(tmp_path, CompileOptions(fuse_expansion="never", **base))
    same, _ = _block(tmp_path, CompileOptions(**base))
    layers = prog.program.layers
    ex = next(i for i, la in enumerate(layers) if la.tiling.get("kind") == "fused")
    assert layers[ex + 1].tiling == layers[ex + 2].tiling == {"fused_into": layers[ex].name}
    assert layers[ex].tiling["eg"] > 0                  # the expansion's pixels per group
    assert layers[ex + 1].depthwise_taps == 9 and layers[ex].depthwise_taps == 0
    ins = prog.program.instructions
    requants = {(r.dst, r.n_pix * r.k) for r in ins if isinstance(r, I.Requant) and r.layer == ex}
    dws = [d for d in ins if isinstance(d, I.DwConv)]
    assert dws and all(d.layer == ex + 1 for d in dws)
    assert requants and any(any(d.src <= a < d.src + d.in_h * d.in_w * d.c for d in dws) for a, _ in requants)
    assert any(isinstance(x, I.Conv) and x.layer == ex for x in ins)
    assert _off_chip(prog.program, ex) == _off_chip(prog.program, ex + 1) == 0
    assert _off_chip(pair.program, ex) == 12 * 12 * 24          # the pair-only program stores it
    assert pair.program.layers[ex].tiling.get("kind") != "fused"
    # `never` is the pair-only program; `auto` is one of the two, as `pick` prefers
    assert pair.program.instructions != prog.program.instructions
    assert same.program.instructions in (pair.program.instructions, prog.program.instructions)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 4, 12, 12)).astype(np.float32)}])
    with pytest.raises(InputError, match="fuse_expansion"):
        _block(tmp_path, CompileOptions(fuse_expansion="sometimes"))


@pytest.mark.parametrize("tie", [0.0, 0.5])
def test_expansion_auto_keeps_the_preferred_program(tmp_path, tie):
    """`fuse_expansion="auto"` keeps the pair-only or the expansion-fused program by the
    tilings' rule (fewer cycles; within `tie`, less dynamic energy)."""
    base = dict(max_tile_rows=3, onchip_fraction=0.0, fuse_depthwise="always", energy_tie=tie)
    profiles = {m: _block(tmp_path, CompileOptions(fuse_expansion=m, **base), abuf=8)[0].profile()
                for m in ("auto", "always", "never")}
    timed = {m: (p.total_cycles, p.energy_uj - p.energy_breakdown_uj["static"]) for m, p in profiles.items()}
    fast = min(timed["never"][0], timed["always"][0])
    near = [m for m in ("never", "always") if timed[m][0] <= fast * (1 + tie)]
    want = min(near, key=lambda m: (timed[m][1], m != "never")) if tie else \
        ("never" if timed["never"][0] == fast else "always")
    assert timed["auto"][0] == timed[want][0]
    assert timed["auto"][1] == pytest.approx(timed[want][1])


def test_bound_counts_no_spill_for_a_fused_expansion(tmp_path):
    """The expanded tensor (12 x 12 x 24 int8, more than all of a 2 KiB ABUF) is a forced
    spill of the pair-only program (written by the expansion, read by the depthwise); fused
    into the bands it is never stored, so the bound drops by exactly its bytes twice."""
    opts = dict(max_tile_rows=1, onchip_fraction=0.0, compress_weights="never", fuse_depthwise="always")
    fused, _ = _block(tmp_path, CompileOptions(fuse_expansion="always", **opts), abuf=2)
    pair, _ = _block(tmp_path, CompileOptions(fuse_expansion="never", **opts), abuf=2)
    assert sum(la.tiling.get("kind") == "fused" for la in fused.program.layers) == 1
    assert "fused_into" in fused.program.layers[1].tiling
    total = lambda p: sum(la.min_bytes for la in p.program.layers)  # noqa: E731
    assert total(pair) - total(fused) == 2 * 12 * 12 * 24


def test_a_chain_of_pairs_keeps_its_pairs(tmp_path):
    """Depthwise, 1x1, depthwise, 1x1 (DS-CNN's blocks): the first 1x1 belongs to the first
    pair, so it is not taken as the second pair's expansion; both pairs stay fused and the
    program computes what the reference does."""
    rng = np.random.default_rng(5)
    c = 6
    inits = {"D1": rng.standard_normal((c, 1, 3, 3)) * 0.5, "P1": rng.standard_normal((c, c, 1, 1)) * 0.4,
             "D2": rng.standard_normal((c, 1, 3, 3)) * 0.5, "P2": rng.standard_normal((c, c, 1, 1)) * 0.4}
    nodes = [helper.make_node("Conv", ["x", "D1"], ["a"], kernel_shape=[3, 3], pads=[1] * 4, group=c),
             helper.make_node("Relu", ["a"], ["ar"]),
             helper.make_node("Conv", ["ar", "P1"], ["b"], kernel_shape=[1, 1]),
             helper.make_node("Relu", ["b"], ["br"]),
             helper.make_node("Conv", ["br", "D2"], ["d"], kernel_shape=[3, 3], pads=[1] * 4, group=c),
             helper.make_node("Relu", ["d"], ["dr"]),
             helper.make_node("Conv", ["dr", "P2"], ["y"], kernel_shape=[1, 1])]
    data = model(nodes, [("x", [1, c, 9, 9])], ["y"], inits)
    opts = CompileOptions(max_tile_rows=2, onchip_fraction=0.0, fuse_depthwise="always", fuse_expansion="always")
    prog = _compile(tmp_path, data, small_arch(4, 2, 2, 4, 4, "ws"), opts, None)
    groups = prog.schedule.fusion
    assert len(groups) == 2 and all(f.kind == "pair" for f in groups)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, c, 9, 9)).astype(np.float32)}])

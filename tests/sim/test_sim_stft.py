"""The int16 STFT front on the NPU: reflect pad by DMA, the 16x8 basis conv (two MXU byte
passes, int16 out), the fused magnitude on the VPU. The simulator must equal the integer
reference with SRAMs small enough to split the int16 tensors into many tiles."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npukit
from npukit.arch import load_arch
from npukit.isa import instructions as I
from npukit.kernels.float_exec import run_float

from stft_cases import audio, stft_model
from test_sim_vs_reference import assert_sim_equals_reference, small_arch


def _compile(tmp_path, data: bytes, arch, feeds, options=None):
    path = tmp_path / "stft.onnx"
    path.write_bytes(data)
    calib = {"x": np.stack([f["x"] for f in feeds])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kw = {} if options is None else {"options": options}
        return npukit.compile(path, arch, calibration=calib, **kw)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(40, 160), kernel=st.sampled_from([8, 16, 32]), stride_div=st.sampled_from([1, 2, 4]),
       bins=st.integers(2, 20), pad=st.tuples(st.integers(0, 7), st.integers(0, 7)),
       abuf=st.sampled_from([2, 4]), acc=st.sampled_from([2, 4]), seed=st.integers(0, 2 ** 16))
def test_stft_front_sim_equals_reference(tmp_path, n, kernel, stride_div, bins, pad, abuf, acc, seed):
    rng = np.random.default_rng(seed)
    feeds = audio(rng, n, 4)
    arch = small_arch(abuf, 1, acc, 8, 8, "ws")
    prog = _compile(tmp_path, stft_model(n, kernel, kernel // stride_div, bins, pad), arch, feeds)
    layers = {l.op: l.target for l in prog.program.layers}
    assert layers["magnitude"] == layers["pad"] == "npu" and all(t == "npu" for t in layers.values())
    convs = [i for i in prog.program.instructions if isinstance(i, I.Conv)]
    assert {c.in_bytes for c in convs} == {1, 2}             # the basis conv is 16x8, the tail int8
    assert any(isinstance(i, I.Requant) and i.mode == 2 for i in prog.program.instructions)
    assert_sim_equals_reference(prog, feeds)


def test_int16_tensors_split_into_tiles(tmp_path):
    """A tiny ACC forces the basis conv into output-channel tiles, a tiny ABUF the magnitude
    into channel blocks; results still equal the reference."""
    rng = np.random.default_rng(3)
    feeds = audio(rng, 256, 3)
    prog = _compile(tmp_path, stft_model(256, 32, 16, 40, (0, 16)), small_arch(2, 1, 1, 8, 8, "ws"), feeds)
    ins = prog.program.instructions
    wide = [i for i in ins if isinstance(i, I.Conv) and i.in_bytes == 2]
    mags = [i for i in ins if isinstance(i, I.Magnitude)]
    assert len(wide) > 1 and sum(c.k for c in wide) == 80   # output-channel tiles of 2 x 40 channels
    assert len(mags) > 1 and sum(m.c for m in mags) == 40
    assert_sim_equals_reference(prog, feeds)


def test_stft_front_tracks_float(tmp_path):
    """Against float with the same (int8, dequantised) basis weights, the NPU's magnitudes are
    within the output's rounding, half an LSB, plus a tenth of an LSB for the int16 roundings
    (audio, conv output, the 15-bit magnitude scale), at levels spread over 60 dB."""
    from dataclasses import replace

    from npukit.frontend.onnx import load_onnx
    from npukit.opt.pipeline import optimize
    rng = np.random.default_rng(5)
    feeds = audio(rng, 512, 8)
    data = stft_model(512, 64, 32, 33, (0, 32), tail_conv=False)
    prog = _compile(tmp_path, data, load_arch("npu-m"), feeds)
    g = prog.qgraph
    assert g.tensors["x"].dtype.value == "int16"
    fg = optimize(load_onnx(data))
    conv = next(n for n in g.nodes if n.op.value == "conv2d")
    w = g.tensors[conv.inputs[1]]
    wf = w.data.astype(np.float64) * np.asarray(w.quant.scale)[:, None, None, None]
    fg.tensors[conv.inputs[1]] = replace(fg.tensors[conv.inputs[1]], data=wf.astype(np.float32))
    scale = g.tensors["y"].quant.s
    worst = 0.0
    for feed in feeds:
        worst = max(worst, float(np.max(np.abs(prog.run(feed)["y"] - run_float(fg, feed)["y"]))) / scale)
    assert worst <= 0.6, worst


def test_unpaired_slices_do_not_fuse(tmp_path):
    """Slices that are not the two halves of the axis stay element-wise tables (no MAGNITUDE)."""
    rng = np.random.default_rng(1)
    feeds = audio(rng, 64, 2)
    prog = _compile(tmp_path, stft_model(64, 16, 8, 6, (0, 8), tail_conv=False, halves=(5, 11)),
                    load_arch("npu-s"), feeds)
    ops = {l.op for l in prog.program.layers}
    assert "magnitude" not in ops and "unary" in ops


def test_halves_that_also_drop_the_first_frame_fuse(tmp_path):
    """silero's v5 export (faster-whisper's VAD) cuts frame 0 off both halves: one SLICE of the
    frames, then the MAGNITUDE. The float graph equals onnxruntime and the simulator equals
    the integer reference."""
    import onnxruntime as ort

    from npukit.frontend.onnx import load_onnx
    from npukit.opt.pipeline import optimize
    rng = np.random.default_rng(8)
    feeds = audio(rng, 256, 3)
    data = stft_model(256, 32, 16, 10, (16, 16), drop_first_frame=True)
    fg = optimize(load_onnx(data))
    assert [n.op.value for n in fg.nodes].count("magnitude") == 1
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    for feed in feeds:
        np.testing.assert_allclose(run_float(fg, feed)["y"], session.run(["y"], feed)[0], rtol=1e-4, atol=1e-5)
    prog = _compile(tmp_path, data, small_arch(2, 1, 1, 8, 8, "ws"), feeds)
    layers = {l.op: l.target for l in prog.program.layers}
    assert layers["magnitude"] == layers["slice"] == "npu"
    assert_sim_equals_reference(prog, feeds)


def test_basis_past_32bit_accumulators_keeps_int64_sums_on_the_npu(tmp_path):
    """600 taps of int16 x int8 could overflow an int32 sum: the 16x8 passes accumulate in
    int64 (ACC holds 8 bytes each), so the conv stays on the NPU and equals the reference."""
    rng = np.random.default_rng(2)
    feeds = audio(rng, 700, 2)
    prog = _compile(tmp_path, stft_model(700, 600, 100, 4, (0, 0), tail_conv=False), load_arch("npu-m"), feeds)
    conv = next(l for l in prog.program.layers if l.op == "conv2d")
    assert conv.target == "npu"
    assert next(l for l in prog.program.layers if l.op == "magnitude").target == "npu"
    assert_sim_equals_reference(prog, feeds, check_timing_order=False)


def test_int16_support_names_what_it_refuses(tmp_path):
    from dataclasses import replace

    from npukit.codegen.wide import int16_support
    rng = np.random.default_rng(4)
    feeds = audio(rng, 64, 2)
    prog = _compile(tmp_path, stft_model(64, 16, 8, 4, (0, 4), tail_conv=False), load_arch("npu-s"), feeds)
    g = prog.qgraph
    conv = next(n for n in g.nodes if n.op.value == "conv2d")
    assert int16_support(g, conv) == ""
    assert "16x8" in int16_support(g, conv.with_(attrs=replace(conv.attrs, groups=2)))
    mag = next(n for n in g.nodes if n.op.value == "magnitude")
    assert int16_support(g, mag) == ""      # int8 out; int16 out too (precision int16)
    bad = replace(g.tensors[mag.inputs[0]], dtype=g.tensors[mag.outputs[0]].dtype)
    assert "int16 input" in int16_support(g.with_nodes(g.nodes, {**g.tensors, mag.inputs[0]: bad}), mag)


@pytest.mark.parametrize("pads", [((0, 0), (0, 0), (2, 1), (0, 3)), ((0, 0), (1, 1), (0, 0), (2, 2))])
def test_reflect_pad_runs_on_the_npu(tmp_path, pads):
    """ONNX reflect Pad (NCHW, several axes) is an NPU PAD: DMA mirror copies equal numpy's
    reflect, corners included."""
    from onnx import TensorProto, helper, numpy_helper
    flat = [p[0] for p in pads] + [p[1] for p in pads]
    g = helper.make_graph([helper.make_node("Pad", ["x", "p"], ["y"], mode="reflect")], "pad",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 5, 6])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          initializer=[numpy_helper.from_array(np.array(flat, np.int64), "p")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    rng = np.random.default_rng(0)
    feeds = [{"x": rng.standard_normal((1, 3, 5, 6)).astype(np.float32)} for _ in range(2)]
    prog = _compile(tmp_path, m.SerializeToString(), small_arch(1, 1, 1, 4, 4, "ws"), feeds)
    assert {l.op: l.target for l in prog.program.layers}.get("pad") == "npu"
    q = prog.qgraph.tensors["x"].quant
    for feed in feeds:
        got = prog.run(feed)["y"]
        xq = np.clip(np.round(feed["x"] / q.s) + q.zp, -128, 127)
        np.testing.assert_array_equal(np.round(got / q.s + q.zp), np.pad(xq, pads, mode="reflect"))
    assert_sim_equals_reference(prog, feeds)


def test_int16_conv_costs_two_mxu_passes(tmp_path):
    """The timing model charges a 16x8 CONV as two int8 passes: twice the cycles and MACs."""
    from dataclasses import replace

    from npukit.cost.timing import Counts, _Model
    rng = np.random.default_rng(6)
    feeds = audio(rng, 128, 2)
    arch = load_arch("npu-s")
    prog = _compile(tmp_path, stft_model(128, 32, 16, 8, (0, 16), tail_conv=False), arch, feeds)
    conv = next(i for i in prog.program.instructions if isinstance(i, I.Conv) and i.in_bytes == 2)
    model = _Model(prog.program, arch)
    c16, c8 = Counts(), Counts()
    t16, t8 = model.latency(conv, c16), model.latency(replace(conv, in_bytes=1), c8)
    assert t16 == 2 * t8 > 0 and c16.macs == 2 * c8.macs == 2 * conv.out_h * conv.out_w * conv.k * 32


@pytest.mark.parametrize("value,target", [(0.0, "npu"), (0.3, "host")])
def test_int16_constant_pad(tmp_path, value, target):
    """A zero pad of int16 audio is a byte fill on the NPU; any other value's int16 code is not
    a repeated byte, so that PAD runs on the host, with the reason; both equal the reference."""
    rng = np.random.default_rng(7)
    feeds = audio(rng, 96, 2)
    prog = _compile(tmp_path, stft_model(96, 16, 8, 5, (3, 5), tail_conv=False, pad_value=value),
                    small_arch(2, 1, 1, 8, 8, "ws"), feeds)
    pad = next(l for l in prog.program.layers if l.op == "pad")
    assert pad.target == target and (target == "npu" or "fill code" in pad.reason)
    assert_sim_equals_reference(prog, feeds)


def test_int16_magnitude_output_sim_equals_reference(tmp_path):
    """precision int16 widens the magnitude's output too (int16 out, 2-byte tiles): on the NPU,
    split into channel blocks by a tiny ABUF, equal to the integer reference."""
    from dataclasses import replace

    from npukit.codegen.context import CompileOptions
    rng = np.random.default_rng(4)
    feeds = audio(rng, 256, 3)
    prog = _compile(tmp_path, stft_model(256, 32, 16, 40, (0, 16)), small_arch(2, 1, 1, 8, 8, "ws"), feeds,
                    replace(CompileOptions(), precision="int16"))
    g = prog.qgraph
    mag = next(n for n in g.nodes if n.op.value == "magnitude")
    assert g.tensors[mag.outputs[0]].dtype.value == "int16"
    mags = [i for i in prog.program.instructions if isinstance(i, I.Magnitude)]
    assert len(mags) > 1 and all(m.qparams[4] == 32767 for m in mags)
    assert {l.target for l in prog.program.layers} == {"npu"}
    assert_sim_equals_reference(prog, feeds)

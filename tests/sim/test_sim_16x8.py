"""16x8 layers on the simulated NPU against LiteRT's reference interpreter, element for
element: depthwise (DwConv with int16 input and output, the 16x8 output stage), fully
connected (two MXU byte passes, Requant mode 3) and QUANTIZE between int8 and int16 (a 1x1
DwConv of weight 1), over random geometries on SRAMs small enough to split them into tiles.
The timing model charges the int16 depthwise as two passes and twice the activation bytes."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npukit
from npukit.arch import load_arch
from npukit.cost import costs
from npukit.cost.timing import Counts, _Model
from npukit.isa import instructions as I
from npukit.testing.models_16x8 import dw16x8_model, fc16x8_model, quantize_model
from npukit.testing.tflite_builder import run_reference

from test_sim_vs_reference import small_arch

SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ARCHS = st.sampled_from([("npu-s", None), ("small", (2, 1, 1, 4, 4, "ws")), ("small", (4, 2, 1, 8, 8, "os"))])


def _arch(choice):
    name, small = choice
    return load_arch(name) if small is None else small_arch(*small)


def _run(tmp_path, model: bytes, x: np.ndarray, arch, engine: str = "auto"):
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    cm = npukit.compile(path, arch, host="never", options={"depthwise_engine": engine})
    assert cm.profile().host_ops == []
    return cm, cm.run({cm.input_names[0]: x})[cm.output_names[0]]


@SETTINGS
@given(seed=st.integers(0, 2 ** 16), hw=st.tuples(st.integers(1, 9), st.integers(3, 14)), ch=st.integers(1, 12),
       mult=st.integers(1, 2), kernel=st.tuples(st.integers(1, 3), st.integers(1, 5)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 3)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
       padding=st.sampled_from(["SAME", "VALID"]), gain=st.sampled_from([0.05, 1.0, 20.0]),
       engine=st.sampled_from(["mxu", "vpu"]), arch=ARCHS)
def test_depthwise_16x8_sim_equals_litert(tmp_path, seed, hw, ch, mult, kernel, stride, dilation, padding, gain,
                                          engine, arch):
    span = [(kernel[i] - 1) * dilation[i] + 1 for i in range(2)]
    if padding == "VALID" and (hw[0] < span[0] or hw[1] < span[1]):
        return
    model, x, *_ = dw16x8_model(seed, hw, ch, mult, kernel, stride, dilation, padding, gain)
    _, got = _run(tmp_path, model, x, _arch(arch), engine)
    np.testing.assert_array_equal(got, run_reference(model, [x])[0])


@SETTINGS
@given(seed=st.integers(0, 2 ** 16), rows=st.integers(1, 40), c=st.integers(1, 1200), k=st.integers(1, 40), arch=ARCHS)
def test_fully_connected_16x8_sim_equals_litert(tmp_path, seed, rows, c, k, arch):
    model, x = fc16x8_model(seed, rows, c, k)
    _, got = _run(tmp_path, model, x, _arch(arch))
    np.testing.assert_array_equal(got, run_reference(model, [x])[0])


def test_fully_connected_16x8_sums_past_int32_on_the_npu(tmp_path):
    """1536 inputs of 32767 x 127: the sum (6.4e9) needs the int64 accumulators LiteRT keeps."""
    from npukit.testing.tflite_builder import TensorSpec, build_single_op
    from ai_edge_litert import schema_py_generated as tfl
    c = 1536
    x = np.full((2, c), 32767, np.int16)
    x[1] = -32768
    w = np.full((3, c), 127, np.int8)
    w[1, ::2] = -128
    bias = np.array([0, 5, -(2 ** 40)], np.int64)
    s_in, ws = 1e-3, [0.01, 0.01, 0.01]
    s_out = float(np.float32(1e-3 * 0.01 * 6.9e9 / 32000))
    model = build_single_op("FULLY_CONNECTED", [
        TensorSpec("x", x.shape, "int16", s_in, 0), TensorSpec("w", w.shape, "int8", ws, 0, 0, w),
        TensorSpec("b", (3,), "int64", [s_in * s for s in ws], 0, 0, bias)],
        [TensorSpec("y", (2, 3), "int16", s_out, 0)], tfl.FullyConnectedOptionsT(), version=5)
    cm, got = _run(tmp_path, model, x, load_arch("npu-s"))
    want = run_reference(model, [x])[0]
    np.testing.assert_array_equal(got, want)
    assert abs(int(want[0, 0])) > 20000


@SETTINGS
@given(shape=st.sampled_from([(1, 7), (3, 50), (2, 9, 11, 5), (1, 64, 64, 3)]), widen=st.booleans(),
       log_s=st.floats(-14, -2), log_ratio=st.floats(-9, 9), zp=st.integers(-128, 127), seed=st.integers(0, 2 ** 16),
       arch=ARCHS)
def test_quantize_int8_int16_sim_equals_litert(tmp_path, shape, widen, log_s, log_ratio, zp, seed, arch):
    s_in = 2.0 ** log_s
    model = quantize_model(shape, widen, s_in, s_in * 2.0 ** log_ratio, zp)
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, shape).astype(np.int8) if widen else \
        rng.integers(-32768, 32768, shape).astype(np.int16)
    _, got = _run(tmp_path, model, x, _arch(arch))
    np.testing.assert_array_equal(got, run_reference(model, [x])[0])


def test_int16_depthwise_costs_two_passes_and_twice_the_bytes(tmp_path):
    """A 16x8 depthwise layer (5x6x4 input, 3x3 kernel, VALID: 3x4x4 outputs) against the
    closed forms: per tile, twice the MACs and engine cycles of the same int8 tile and 2 bytes
    per input and output element read and written; the layer's DMAs move 2 bytes per element."""
    model, x, *_ = dw16x8_model(3, (5, 6), 4, 1, (3, 3), (1, 1), (1, 1), "VALID", 1.0)
    arch = load_arch("npu-m")
    for engine in ("mxu", "vpu"):
        cm, got = _run(tmp_path, model, x, arch, engine)
        np.testing.assert_array_equal(got, run_reference(model, [x])[0])
        tiles = [i for i in cm.program.instructions if isinstance(i, I.DwConv)]
        m, macs, cycles = _Model(cm.program, arch), 0, 0
        for dw in tiles:
            assert (dw.in_bytes, dw.out_bytes, dw.mode, dw.kernel) == (2, 2, 2, (3, 3))
            c16, c8 = Counts(), Counts()
            t16 = m.latency(dw, c16)
            t8 = m.latency(replace(dw, in_bytes=1, out_bytes=1, mode=0), c8)
            e, k = dw.out_h * dw.out_w, dw.c * dw.mult
            assert c16.macs == 2 * c8.macs == 2 * e * k * 9
            assert c16.sram_bytes[I.ABUF] == 2 * dw.in_h * dw.in_w * dw.c + 2 * e * k
            if engine == "vpu":
                assert t16 == costs.vpu_cycles(2 * e * k * 9, arch.vpu.lanes, arch.vpu.pipeline_depth)
            else:
                assert t16 == 2 * t8 == 2 * costs.mxu_depthwise_cycles(e, k, 9, arch.mxu.rows, arch.mxu.cols,
                                                                       m.overlap)
            macs, cycles = macs + c16.macs, cycles + t16
        assert macs == 2 * (3 * 4 * 4) * 9
        (layer,) = [la for la in cm.program.layers if la.op == "conv2d"]
        assert layer.macs == macs            # the roofline counts the two passes too
        dmas = [i for i in cm.program.instructions if isinstance(i, I.Dma)]
        loaded = sum(int(np.prod(i.shape)) * i.elem for i in dmas if i.dst_space == I.ABUF)
        stored = sum(int(np.prod(i.shape)) * i.elem for i in dmas if i.src_space == I.ABUF)
        assert loaded == 2 * sum(dw.in_h * dw.in_w * dw.c for dw in tiles)
        assert stored == 2 * 3 * 4 * 4

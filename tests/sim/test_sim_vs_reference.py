"""The simulator executes only the binary; its outputs must equal the integer reference's.

Hypothesis draws convolution geometries (grouped, depthwise, transposed, odd kernels,
strides, dilation, asymmetric padding) and architectures with small SRAMs and forced row
tiles, so tiles rarely divide the layer evenly.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npukit
from npukit.arch import load_arch
from npukit.codegen.context import CompileOptions
from npukit.measure import quantize_inputs
from npukit.isa import instructions as I
from npukit.sim.functional import Simulator
from npukit.sim.reference import run_reference

from cases import conv_chain_model, conv_model, vector_model


def _compile(tmp_path, data: bytes, arch, options, calib):
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npukit.compile(path, arch, calibration=calib, options=options)


def assert_sim_equals_reference(prog, feeds_float: list[dict], check_timing_order=True):
    """Program order, the timing model's order, and the float32 conv kernels (the path a CPU
    without exact int8 products takes) all compute the reference's outputs."""
    float32 = Simulator(prog.program, {I.ABUF: prog.arch.abuf_bytes, I.WBUF: prog.arch.wbuf_bytes,
                                       I.ACC: prog.arch.acc_bytes}, int8_gemm=False)
    for feed in feeds_float:
        q = quantize_inputs(prog.qgraph, feed)
        want = run_reference(prog.qgraph, q)
        got = prog.run_int(q)
        other = float32.run(q)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name], err_msg=f"output {name}")
            np.testing.assert_array_equal(other[name], want[name], err_msg=f"float32 kernels, {name}")
        if check_timing_order:   # any order the timing model picks must compute the same
            t = prog.timeline()
            order = list(np.lexsort((np.arange(len(t.start)), t.start)))
            again = prog.run_int(q, order=order)
            for name in want:
                np.testing.assert_array_equal(again[name], want[name], err_msg=f"timing order, {name}")


def small_arch(abuf_kib, wbuf_kib, acc_kib, rows, cols, dataflow):
    return load_arch("npu-s").replace({"sram.abuf_kib": abuf_kib, "sram.wbuf_kib": wbuf_kib,
                                       "sram.acc_kib": acc_kib, "sram.banks": 1, "mxu.rows": rows,
                                       "mxu.cols": cols, "mxu.dataflow": dataflow})


@st.composite
def conv_cases(draw):
    kind = draw(st.sampled_from(["plain", "grouped", "depthwise", "transposed"]))
    groups = 1
    if kind == "grouped":
        groups = draw(st.sampled_from([2, 3]))
    c = groups * draw(st.integers(1, 4)) if kind != "depthwise" else draw(st.integers(1, 8))
    if kind == "depthwise":
        groups, k = c, c * draw(st.sampled_from([1, 2]))
    else:
        k = groups * draw(st.integers(1, 6))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (1, 1) if kind == "transposed" else (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(kh * dilation[0], 13)), draw(st.integers(kw * dilation[1], 13))
    pads = [draw(st.integers(0, min(2, kh - 1))), draw(st.integers(0, min(2, kw - 1))),
            draw(st.integers(0, min(2, kh - 1))), draw(st.integers(0, min(2, kw - 1)))]
    out_pad = (0, 0)
    if kind == "transposed":
        out_pad = (draw(st.integers(0, stride[0] - 1)), draw(st.integers(0, stride[1] - 1)))
    return dict(c=c, k=k, h=h, w=w, kernel=(kh, kw), stride=stride, dilation=dilation, pads=pads,
                groups=groups, transposed=kind == "transposed", relu=draw(st.booleans()),
                output_padding=out_pad)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=conv_cases(), seed=st.integers(0, 2**16), abuf=st.sampled_from([1, 2, 4]),
       mxu=st.sampled_from([(4, 4), (8, 8), (4, 8)]), dataflow=st.sampled_from(["ws", "os", "auto"]),
       rows=st.sampled_from([0, 1, 2, 3]), dw_engine=st.sampled_from(["auto", "mxu", "vpu"]),
       order=st.sampled_from(["auto", "k_outer", "rows_outer"]), double=st.booleans())
def test_conv_sim_equals_reference(tmp_path, case, seed, abuf, mxu, dataflow, rows, dw_engine, order, double):
    rng = np.random.default_rng(seed)
    data = conv_model(rng, **case)
    arch = small_arch(abuf, 1, 1, mxu[0], mxu[1], dataflow)
    opts = CompileOptions(max_tile_rows=rows, depthwise_engine=dw_engine, loop_order=order, double_buffer=double)
    shape = (1, case["c"], case["h"], case["w"])
    calib = {"x": rng.standard_normal((4,) + shape).astype(np.float32)}
    prog = _compile(tmp_path, data, arch, opts, calib)
    feeds = [{"x": rng.standard_normal(shape).astype(np.float32) * 1.5} for _ in range(2)]
    assert_sim_equals_reference(prog, feeds)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), kind=st.sampled_from(["plain", "grouped", "transposed"]),
       kw=st.integers(1, 9), stride=st.integers(1, 4), dilation=st.integers(1, 2),
       pads=st.tuples(st.integers(0, 3), st.integers(0, 3)), w=st.integers(1100, 2000),
       double=st.booleans(), dataflow=st.sampled_from(["ws", "os"]))
def test_one_long_row_conv_is_taken_down_its_columns(tmp_path, seed, kind, kw, stride, dilation, pads, w,
                                                     double, dataflow):
    """A one-row conv whose row does not fit ABUF (an audio front end's 1 x 256 kernel over
    44,098 samples) runs down its columns, and computes the reference's outputs."""
    from npukit.codegen.conv import conv_problem
    from npukit.schedule.tiling import one_row_fits

    rng = np.random.default_rng(seed)
    groups = 2 if kind == "grouped" else 1
    c, k = 2 * groups, 3 * groups
    if kind == "transposed":
        dilation, pads = 1, (min(pads[0], kw - 1), min(pads[1], kw - 1))
    data = conv_model(rng, c=c, k=k, h=1, w=w, kernel=(1, kw), stride=(1, stride), dilation=(1, dilation),
                      pads=[0, pads[0], 0, pads[1]], groups=groups, transposed=kind == "transposed")
    arch = small_arch(1, 1, 1, 4, 4, dataflow)
    calib = {"x": rng.standard_normal((3, 1, c, 1, w)).astype(np.float32)}
    prog = _compile(tmp_path, data, arch, CompileOptions(double_buffer=double), calib)
    conv = next(n for n in prog.qgraph.nodes if n.op.value == "conv2d")
    assert not one_row_fits(conv_problem(prog.qgraph, conv).shape, arch.abuf_bytes, arch.acc_bytes, 1)
    tiles = [i for i in prog.program.instructions if isinstance(i, I.Conv)]
    assert len(tiles) > 1 and all(t.in_w == 1 for t in tiles)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, c, 1, w)).astype(np.float32)}])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), h=st.integers(2, 4), w=st.integers(1100, 2000), groups=st.sampled_from([1, 2]),
       double=st.booleans())
def test_pointwise_conv_over_rows_too_wide_runs_over_its_pixels(tmp_path, seed, h, w, groups, double):
    """A 1x1 conv whose rows do not fit (a detector's box decoder over 4 rows of 8400 anchors)
    runs over its H * W pixels as one column, and computes the reference's outputs."""
    from npukit.codegen.conv import conv_problem
    from npukit.schedule.tiling import one_row_fits

    rng = np.random.default_rng(seed)
    c, k = 2 * groups, groups
    data = conv_model(rng, c=c, k=k, h=h, w=w, kernel=(1, 1), stride=(1, 1), dilation=(1, 1),
                      pads=[0, 0, 0, 0], groups=groups)
    arch = small_arch(1, 1, 1, 4, 4, "ws")
    calib = {"x": rng.standard_normal((3, 1, c, h, w)).astype(np.float32)}
    prog = _compile(tmp_path, data, arch, CompileOptions(double_buffer=double), calib)
    conv = next(n for n in prog.qgraph.nodes if n.op.value == "conv2d")
    assert conv.name not in {o["node"] for o in prog.profile().host_ops}
    assert not one_row_fits(conv_problem(prog.qgraph, conv).shape, arch.abuf_bytes, arch.acc_bytes, 1)
    tiles = [i for i in prog.program.instructions if isinstance(i, I.Conv)]
    assert len(tiles) > 1 and all(t.in_w == 1 for t in tiles)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, c, h, w)).astype(np.float32)}])


def test_a_conv_no_tiling_fits_runs_on_the_host(tmp_path):
    """A 3x3 conv whose one output row needs more than ABUF is placed on the host, with the
    reason, instead of refusing the model; the program still computes the reference's outputs."""
    rng = np.random.default_rng(3)
    data = conv_model(rng, c=2, k=3, h=3, w=1500, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                      pads=[0, 1, 0, 1], groups=1, relu=True)
    calib = {"x": rng.standard_normal((3, 1, 2, 3, 1500)).astype(np.float32)}
    prog = _compile(tmp_path, data, small_arch(1, 1, 1, 4, 4, "ws"), CompileOptions(), calib)
    host = [la for la in prog.program.layers if la.target == "host"]
    assert len(host) == 1 and host[0].reason.startswith("no tiling fits: one output row (1500 pixels")
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 2, 3, 1500)).astype(np.float32)}])


def test_tiles_really_split(tmp_path):
    """The property test above is only meaningful if layers are split: check one is."""
    rng = np.random.default_rng(0)
    data = conv_model(rng, c=4, k=6, h=13, w=11, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                      pads=[1, 1, 1, 1], groups=1)
    prog = _compile(tmp_path, data, small_arch(4, 1, 4, 4, 4, "ws"), CompileOptions(max_tile_rows=3), None)
    convs = [i for i in prog.program.instructions if type(i).__name__ == "Conv"]
    assert len(convs) >= 5 and len({c.out_h for c in convs}) >= 2   # 13 rows in tiles of 3: one of 1
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 4, 13, 11)).astype(np.float32)}])


@pytest.mark.parametrize("arch", ["npu-s", "npu-m"])
def test_fc_and_conv_net(tmp_path, arch):
    rng = np.random.default_rng(1)
    data = conv_model(rng, c=3, k=8, h=9, w=9, kernel=(3, 3), stride=(2, 2), dilation=(1, 1),
                      pads=[1, 1, 1, 1], groups=1, relu=True)
    prog = _compile(tmp_path, data, arch, CompileOptions(), None)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 3, 9, 9)).astype(np.float32)}])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), c=st.integers(1, 6), h=st.integers(4, 12), w=st.integers(4, 12),
       pool=st.sampled_from(["MaxPool", "AveragePool", "global"]), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)), pad=st.integers(0, 1),
       bcast=st.sampled_from(["channel", "scalar", "full"]),
       act=st.sampled_from(["Sigmoid", "Tanh", "HardSwish", "Relu", "LeakyRelu"]), abuf=st.sampled_from([1, 2, 64]))
def test_vector_layers_sim_equals_reference(tmp_path, seed, c, h, w, pool, kernel, stride, pad, bcast, act, abuf):
    rng = np.random.default_rng(seed)
    pads = [min(pad, kernel[0] - 1), min(pad, kernel[1] - 1)] * 2
    data = vector_model(rng, c, h, w, pool, kernel, stride, pads, bcast, act)
    shape = (1, c, h, w)
    calib = {"x": rng.standard_normal((4,) + shape).astype(np.float32)}
    prog = _compile(tmp_path, data, small_arch(abuf, 1, 1, 4, 4, "auto"), CompileOptions(), calib)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal(shape).astype(np.float32)}])


@pytest.mark.parametrize("batch", [2, 5])
def test_batch_on_datacentre_preset(tmp_path, batch):
    """Batch > 1 on npu-dc: every image of the batch equals the reference."""
    from pathlib import Path
    model = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"
    rng = np.random.default_rng(batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(model, "npu-dc", input_shapes={"x": (batch, 1, 8, 8)},
                              calibration={"x": rng.random((4, batch, 1, 8, 8), dtype=np.float32)})
    assert_sim_equals_reference(prog, [{"x": rng.random((batch, 1, 8, 8), dtype=np.float32)}])
    assert prog.profile().macs == batch * 25600


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), c=st.integers(1, 5), k1=st.sampled_from([2, 4, 6]), k2=st.integers(1, 6),
       h=st.integers(3, 11), w=st.integers(3, 11), kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.tuples(st.integers(1, 2), st.integers(1, 2)), groups2=st.sampled_from([1, 2]),
       abuf=st.sampled_from([2, 4, 8]), rows=st.sampled_from([0, 1, 2]), order=st.sampled_from(["k_outer", "rows_outer"]))
def test_conv_chain_in_place_sim_equals_reference(tmp_path, seed, c, k1, k2, h, w, kernel, stride, groups2, abuf,
                                                  rows, order):
    rng = np.random.default_rng(seed)
    k2 = k2 * groups2
    data = conv_chain_model(rng, c, k1, k2, h, w, kernel, stride, [kernel[0] // 2, kernel[1] // 2] * 2, groups2)
    shape = (1, c, h, w)
    calib = {"x": rng.standard_normal((4,) + shape).astype(np.float32)}
    prog = _compile(tmp_path, data, small_arch(abuf, 1, 2, 4, 4, "auto"),
                    CompileOptions(max_tile_rows=rows, loop_order=order), calib)
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal(shape).astype(np.float32)}])


def test_resident_tensors_are_read_and_written_in_place(tmp_path):
    """The chain test above is only meaningful if the in-place paths run: check they do."""
    rng = np.random.default_rng(0)
    data = conv_chain_model(rng, 3, 4, 4, 8, 8, (3, 3), (1, 1), [1, 1, 1, 1], 1)
    prog = _compile(tmp_path, data, small_arch(8, 1, 2, 4, 4, "ws"), CompileOptions(), None)
    program = prog.program.instructions
    convs = [i for i in program if isinstance(i, I.Conv)]
    first, second = convs[0].layer, convs[-1].layer
    dmas = [i for i in program if isinstance(i, I.Dma)]
    assert first != second
    assert not any(d.layer == first and d.src_space == I.ABUF for d in dmas)    # no store: written in place
    assert not any(d.layer == second and d.dst_space == I.ABUF for d in dmas)   # no load: read in place
    assert_sim_equals_reference(prog, [{"x": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}])

"""Layer norm on the VPU (the LAYERNORM instruction): the instruction equals the integer kernel
on random int8 / int16 rows of several lengths and a hand-worked case; a compiled ONNX
LayerNormalization (opset 17) runs on the NPU alone, in one or many row tiles, equal to the
integer reference and close to onnxruntime; the timing charges what partition's vpu_ops
counts; a corrupt LAYERNORM is refused with a one-line error."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from onnx import helper

import npukit
from npukit.codegen.norm import param_block
from npukit.codegen.partition import vpu_ops
from npukit.cost.timing import layer_norm_ops
from npukit.errors import BinaryError
from npukit.isa import instructions as I
from npukit.isa.encoding import decode, disassemble, encode
from npukit.kernels import kernels_transformer as kt
from npukit.sim.reference import run_reference
from npukit.sim.semantics import Machine, execute

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from onnx_testutil import model_bytes, onnxruntime_outputs  # noqa: E402


def _run_instruction(x: np.ndarray, p: kt.LayerNormParams, out_t) -> np.ndarray:
    rows, n = x.shape
    ib, ob = x.dtype.itemsize, np.dtype(out_t).itemsize
    block = param_block(p)
    src, pa = 0, I.align(rows * n * ib)
    dst = pa + I.align(block.size)
    m = Machine({I.ABUF: dst + rows * n * ob, I.WBUF: 16, I.ACC: 16}, [])
    m.view(I.ABUF, src, x.shape, x.dtype)[...] = x
    m.view(I.ABUF, pa, (block.size,), np.uint8)[...] = block
    execute(m, I.LayerNorm(0, (), src, rows, n, ib, pa, dst, ob, p.output_zp, p.act_min, p.act_max))
    return m.view(I.ABUF, dst, (rows, n), out_t).copy()


@pytest.mark.parametrize("n", [1, 2, 7, 64, 384, 1000])
@pytest.mark.parametrize("in_t,out_t", [(np.int8, np.int8), (np.int8, np.int16), (np.int16, np.int8),
                                        (np.int16, np.int16)])
def test_instruction_equals_the_kernel(n, in_t, out_t):
    rng = np.random.default_rng(n * 7 + np.dtype(in_t).itemsize + 3 * np.dtype(out_t).itemsize)
    info = np.iinfo(in_t)
    for rows in (1, 5):
        x = rng.integers(info.min, info.max + 1, (rows, n)).astype(in_t)
        x[:, :: max(n // 3, 1)] //= 8                  # rows of uneven spread
        gamma, beta = rng.uniform(-2, 2, n), rng.uniform(-1, 1, n)
        s_in = 0.05 if in_t is np.int8 else 1e-4
        p = kt.prepare_layer_norm(s_in, gamma, beta, float(rng.choice([1e-12, 1e-5, 1.0])), 0.02,
                                  int(rng.integers(-9, 9)) if out_t is np.int8 else 0, out_t)
        np.testing.assert_array_equal(_run_instruction(x, p, out_t), kt.layer_norm(x, p, out_t))


def test_instruction_hand_worked():
    """Rows [1, 3] and [-7, -5]: mean +-2 apart by 1, so normalised [-1, 1]; at 1/64 per step, [-64, 64]."""
    p = kt.prepare_layer_norm(1.0, np.ones(2), np.zeros(2), 0.0, 1 / 64, 0)
    got = _run_instruction(np.array([[1, 3], [-7, -5]], np.int8), p, np.int8)
    np.testing.assert_array_equal(got, [[-64, 64], [-64, 64]])
    ins = I.LayerNorm(0, (), 0, 2, 2, 1, 16, 64, 1, 0, -128, 127)
    assert decode(encode([ins])) == [ins] and "LAYERNORM" in disassemble([ins], [])


def test_negative_epsilon_in_the_block_is_refused():
    p = kt.prepare_layer_norm(1.0, np.ones(2), np.zeros(2), 0.0, 1 / 64, 0)
    with pytest.raises(BinaryError, match="eps_q -5"):
        _run_instruction(np.array([[1, 3]], np.int8), replace(p, eps_q=-5), np.int8)


def _onnx_layer_norm(rows: int, n: int, rng) -> bytes:
    node = helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1, epsilon=1e-5)
    return model_bytes([node], {"x": (1, rows, n)}, ["y"],
                       {"g": rng.uniform(0.5, 1.5, n).astype(np.float32),
                        "b": rng.uniform(-0.5, 0.5, n).astype(np.float32)}, opset=17)


@pytest.mark.parametrize("rows,n,precision,opts,tiles", [
    (13, 384, "int8", {}, 1), (6, 40, "int8", {"max_tile_rows": 2}, 3), (9, 96, "int16", {"max_tile_rows": 4}, 3),
    (5, 2000, "int8", {}, 3)])       # npu-s: 32 KiB of working ABUF hold 2 rows of 2000 beside gamma and beta
def test_compiled_layer_norm_runs_on_the_npu(tmp_path, rows, n, precision, opts, tiles):
    rng = np.random.default_rng(rows * n)
    path = tmp_path / "ln.onnx"
    mb = _onnx_layer_norm(rows, n, rng)
    path.write_bytes(mb)
    calib = {"x": rng.standard_normal((4, 1, rows, n)).astype(np.float32) * 3}
    model = npukit.compile(path, "npu-s", calibration=calib, sqnr=False, precision=precision, options=opts)
    prog = model.program
    assert [layer.target for layer in prog.layers] == ["npu"] and not prog.host_segments
    lns = [i for i in prog.instructions if isinstance(i, I.LayerNorm)]
    width = 2 if precision == "int16" else 1
    assert sum(i.rows for i in lns) == rows and all(i.in_bytes == i.out_bytes == width for i in lns)
    assert len(lns) == tiles
    x = rng.standard_normal((1, rows, n)).astype(np.float32) * 3
    feed = model._ints({"x": x})
    np.testing.assert_array_equal(model.run_int(feed)["y"], run_reference(model.qgraph, feed)["y"])
    xq = model.qgraph.tensors["x"].qp       # onnxruntime on the quantised input: the layer's own error
    want = onnxruntime_outputs(mb, {"x": ((feed["x"] - xq.zp) * xq.s).astype(np.float32)})["y"]
    out = model.qgraph.tensors[model.qgraph.outputs[0]]
    info, (scale, zp) = np.iinfo(out.dtype.np), (out.qp.s, out.qp.zp)
    want = np.clip(want, (info.min - zp) * scale, (info.max - zp) * scale)    # the output's calibrated range
    assert np.abs(model.run({"x": x})["y"] - want).max() <= 2 * scale + 0.05
    assert prog.layers[0].vpu_ops == layer_norm_ops(rows, n) == vpu_ops(model.qgraph, model.qgraph.nodes[0])
    assert sum(c.vpu_ops for c in model.timeline().counts) == layer_norm_ops(rows, n)      # the timing model agrees


def test_row_larger_than_abuf_stays_on_the_host(tmp_path):
    rng = np.random.default_rng(5)
    path = tmp_path / "ln.onnx"
    path.write_bytes(_onnx_layer_norm(2, 9000, rng))
    model = npukit.compile(path, "u55-256", calibration={"x": rng.standard_normal((2, 1, 2, 9000))}, sqnr=False)
    layer = model.program.layers[0]
    assert layer.target == "host" and "larger than ABUF" in layer.reason


def test_corrupt_layer_norm_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "ln.onnx"
    path.write_bytes(_onnx_layer_norm(4, 32, rng))
    model = npukit.compile(path, "npu-s", calibration={"x": rng.standard_normal((2, 1, 4, 32))}, sqnr=False)
    at = next(k for k, i in enumerate(model.program.instructions) if isinstance(i, I.LayerNorm))
    ln = model.program.instructions[at]
    for bad in ({"in_bytes": 3}, {"n": 0}, {"params": model.arch.abuf_bytes - 8}, {"act_max": 1000}):
        ins = list(model.program.instructions)
        ins[at] = replace(ln, **bad)
        broken = npukit.api.CompiledModel(replace(model.program, instructions=ins), model.arch)
        with pytest.raises(BinaryError, match="LAYERNORM") as err:
            npukit.loads(broken.to_bytes()).run({"x": np.zeros((1, 4, 32), np.float32)})
        assert "\n" not in str(err.value)

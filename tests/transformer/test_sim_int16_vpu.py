"""int16 GELU (LUT16) and element-wise layers with one int8 and one int16 operand on the VPU:
small ONNX graphs compiled with int16 where the noise report (or precision "int16") asks
for it run with no host segment and equal the integer reference (program order, timing
order, float32 conv kernels)."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.ir.graph import DType, Op
from npukit.isa import instructions as I
from npukit.kernels.kernels_vpu16 import Lut16Params

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402

N, C, H = 6, 16, 48


def _gelu(x: str, y: str) -> list:
    """GELU in the erf form an exporter writes (the frontend fuses it)."""
    return [helper.make_node("Div", [x, "sqrt2"], [f"{y}_d"]), helper.make_node("Erf", [f"{y}_d"], [f"{y}_e"]),
            helper.make_node("Add", [f"{y}_e", "one"], [f"{y}_a"]), helper.make_node("Mul", [x, f"{y}_a"], [f"{y}_m"]),
            helper.make_node("Mul", [f"{y}_m", "half"], [y])]


def _dense(x: str, w: str, b: str, y: str) -> list:
    return [helper.make_node("MatMul", [x, w], [f"{y}_mm"]), helper.make_node("Add", [f"{y}_mm", b], [y])]


def _onnx(tmp_path, nodes, inits: dict, out_c: int) -> Path:
    inits = {"sqrt2": np.float32(np.sqrt(2)), "one": np.float32(1), "half": np.float32(0.5), **inits}
    graph = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, N, C))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, N, out_c))],
                              [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def feed_forward(tmp_path, rng, residual: str = "Add") -> Path:
    """x + p -> dense -> GELU -> dense (one channel ~30x the rest) -> (residual op) x -> dense:
    x + p adds an int8 constant to int8 x into an int16 sum, the residual op reads x as int8
    and the feed-forward output as int16."""
    w2 = rng.standard_normal((H, C)).astype(np.float32) * 0.1
    w2[:, 3] *= 30
    inits = {"p": rng.standard_normal((N, C)), "w1": rng.standard_normal((C, H)) * 0.6, "b1": rng.standard_normal(H),
             "w2": w2, "b2": np.zeros(C), "w3": rng.standard_normal((C, C)) * 0.3, "b3": np.zeros(C)}
    nodes = [helper.make_node("Add", ["x", "p"], ["xp"]), *_dense("xp", "w1", "b1", "h"), *_gelu("h", "g"),
             *_dense("g", "w2", "b2", "f"), helper.make_node(residual, ["f", "x"], ["r"]), *_dense("r", "w3", "b3", "y")]
    return _onnx(tmp_path, nodes, inits, C)


def gelu_out(tmp_path, rng) -> Path:
    """x -> dense -> GELU -> output: an int16 GELU input, an int8 output."""
    nodes = [*_dense("x", "w1", "b1", "h"), *_gelu("h", "y")]
    return _onnx(tmp_path, nodes, {"w1": rng.standard_normal((C, H)) * 0.6, "b1": rng.standard_normal(H)}, H)


def _compile(path: Path, rng, arch, **kw):
    calib = {"x": rng.standard_normal((8, 1, N, C)).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npukit.compile(path, arch, calibration=calib, sqnr=False, **kw)


def _check(model, rng):
    assert [layer.op for layer in model.program.layers if layer.target == "host"] == []
    assert_sim_equals_reference(model, [{"x": rng.standard_normal((1, N, C)).astype(np.float32)} for _ in range(2)])


def _gelus(model):
    qg = model.qgraph
    return [(qg.tensors[n.inputs[0]].dtype, qg.tensors[n.outputs[0]].dtype) for n in qg.nodes if n.op is Op.GELU]


@pytest.mark.parametrize("seed,abuf,residual", [(0, 64, "Add"), (1, 2, "Add"), (2, 4, "Sub"), (3, 4, "Mul")])
def test_feed_forward_int16_below_db_on_the_npu(tmp_path, seed, abuf, residual):
    rng = np.random.default_rng(seed)
    model = _compile(feed_forward(tmp_path, rng, residual), rng, small_arch(abuf, 64, 64, 16, 16, "ws"),
                     int16_below_db=80.0)
    qg = model.qgraph
    assert _gelus(model) == [(DType.I16, DType.I16)]
    ops = [n for n in qg.nodes if n.op in (Op.ADD, Op.SUB, Op.MUL)]
    kinds = [([qg.tensors[t].dtype.value + "c" * qg.tensors[t].is_const for t in n.inputs],
              qg.tensors[n.outputs[0]].dtype.value) for n in ops]
    assert kinds == [(["int8", "int8c"], "int16"), (["int16", "int8"], "int16")]
    ins = model.program.instructions
    assert sum(isinstance(i, I.Lut16) and i.out_bytes == 2 for i in ins) >= 1
    widen = [i for i in ins if isinstance(i, I.DwConv) and i.in_bytes == 1 and i.out_bytes == 2]
    assert sum(i.out_w for i in widen) == 2 * N * C      # x widened once for each of its two int16 layers
    _check(model, rng)


def test_gelu_int16_in_int8_out_on_the_npu(tmp_path):
    rng = np.random.default_rng(2)
    model = _compile(gelu_out(tmp_path, rng), rng, small_arch(2, 64, 64, 16, 16, "ws"), int16_below_db=80.0)
    assert _gelus(model) == [(DType.I16, DType.I8)]
    assert any(isinstance(i, I.Lut16) and i.out_bytes == 1 for i in model.program.instructions)
    _check(model, rng)


def test_precision_int16_widens_gelu_onto_the_npu(tmp_path):
    rng = np.random.default_rng(3)
    model = _compile(feed_forward(tmp_path, rng), rng, small_arch(64, 64, 64, 16, 16, "ws"),
                     options={"precision": "int16"})
    assert _gelus(model) == [(DType.I16, DType.I16)]
    assert isinstance(next(n for n in model.qgraph.nodes if n.op is Op.GELU).params, Lut16Params)
    _check(model, rng)


def _machine():
    from npukit.sim.machine import Machine
    return Machine({I.ABUF: 8192, I.WBUF: 2048, I.ACC: 64}, [])


@pytest.mark.parametrize("out_bytes,zp", [(2, 0), (1, -7)])
def test_lut16_instruction_is_the_kernel(out_bytes, zp):
    """LUT16 at its addresses = kernels_vpu16.lut16 (= LiteRT's LUTLookup, test_kernels_wide)
    on random int16 codes; the bytes around its output are left alone."""
    from npukit.kernels import kernels_transformer as kt
    from npukit.kernels import kernels_vpu16 as k16
    from npukit.sim import plain
    rng = np.random.default_rng(out_bytes)
    m, n = _machine(), 1500
    p = kt.gelu_lut16(3e-4, 0, 3e-4 if out_bytes == 2 else 0.04, zp, "none", out_bytes)
    x = rng.integers(-32768, 32768, n).astype(np.int16)
    m.mem[I.WBUF][48:48 + I.LUT16_BYTES] = p.table.view(np.uint8)
    m.mem[I.ABUF][16:16 + 2 * n] = x.view(np.uint8)
    m.mem[I.ABUF][4000:] = 0xA5
    plain.BINDERS[I.Lut16](m, I.Lut16(0, (), 16, n, 48, 4016, out_bytes, zp))()
    got = m.view(I.ABUF, 4016, (n,), np.int16 if out_bytes == 2 else np.int8)
    np.testing.assert_array_equal(got, k16.lut16(x, p))
    assert (m.mem[I.ABUF][4000:4016] == 0xA5).all() and (m.mem[I.ABUF][4016 + out_bytes * n:] == 0xA5).all()


@pytest.mark.parametrize("out_bytes,zp", [(3, 0), (0, 0), (2, 5), (1, 200)])
def test_corrupt_lut16_fields_are_refused(out_bytes, zp):
    from npukit.errors import BinaryError
    from npukit.sim import plain
    with pytest.raises(BinaryError, match="LUT16"):
        plain.BINDERS[I.Lut16](_machine(), I.Lut16(0, (), 0, 8, 0, 64, out_bytes, zp))


def test_lut16_timing_charges_vpu_ops(tmp_path):
    """LUT16 is a VPU instruction of LUT16_OPS_PER_ELEMENT operations per element."""
    from npukit.cost.timing import LUT16_OPS_PER_ELEMENT, Counts, _Model
    rng = np.random.default_rng(4)
    model = _compile(gelu_out(tmp_path, rng), rng, "npu-s", int16_below_db=80.0)
    luts = [i for i in model.program.instructions if isinstance(i, I.Lut16)]
    timing = _Model(model.program, model.arch)
    for lut in luts:
        c = Counts()
        assert timing.latency(lut, c) > 0 and c.vpu_ops == LUT16_OPS_PER_ELEMENT * lut.n
        assert I.engine_of(lut) is I.Engine.VPU
    assert sum(i.n for i in luts) == N * H

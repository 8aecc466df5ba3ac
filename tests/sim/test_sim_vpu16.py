"""The VPU's int16 forms (TFLite's 16x8 scheme) on the simulator: single-operator 16x8 TFLite
models compiled for SRAMs small enough to split them into many tiles run on the NPU alone and
equal LiteRT's reference interpreter (and the integer reference, in program and timing order);
the timing model charges int16 twice the bytes; corrupt int16 fields are refused."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import npukit
from npukit.arch import load_arch
from npukit.cost.timing import Counts, _Model
from npukit.errors import BinaryError
from npukit.isa import instructions as I
from npukit.sim.reference import run_reference as int_reference
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference

from test_sim_vs_reference import small_arch

ONE = 1 / 32768
SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def q(name, shape, scale):
    return TensorSpec(name, tuple(shape), "int16", float(np.float32(scale)), 0)


def compile_bytes(tmp_path, model: bytes, arch):
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    return npukit.compile(path, arch)


def check(prog, model: bytes, feeds: list[np.ndarray]):
    """On the NPU alone; equal to LiteRT's reference, to the integer reference, in any order."""
    assert all(layer.target == "npu" for layer in prog.program.layers), [l.target for l in prog.program.layers]
    names = prog.input_names
    order = list(np.lexsort((np.arange(len(prog.timeline().start)), prog.timeline().start)))
    want = run_reference(model, feeds)
    got = prog.run(dict(zip(names, feeds)))
    ref = int_reference(prog.qgraph, dict(zip(names, feeds)))
    again = prog.run_int(dict(zip(names, feeds)), order=order)
    for name, w in zip(prog.output_names, want):
        np.testing.assert_array_equal(got[name], w, err_msg=name)
        np.testing.assert_array_equal(ref[name], w, err_msg=f"reference {name}")
        np.testing.assert_array_equal(again[name], w, err_msg=f"timing order {name}")


def codes(rng, shape):
    return rng.integers(-32768, 32768, size=shape).astype(np.int16)


BINARY_SHAPES = [((1, 5, 7, 6), (1, 5, 7, 6)), ((1, 5, 7, 6), (6,)), ((2, 9, 4), (2, 9, 1)), ((3, 40), (1, 40))]


@SETTINGS
@given(op=st.sampled_from(["ADD", "SUB", "MUL", "MAXIMUM"]), shapes=st.sampled_from(BINARY_SHAPES),
       scales=st.tuples(*[st.floats(1e-5, 1e-2)] * 3), abuf=st.sampled_from([2, 4]), seed=st.integers(0, 2 ** 16))
def test_binary_16x8_sim(tmp_path, op, shapes, scales, abuf, seed):
    rng = np.random.default_rng(seed)
    a, b = codes(rng, shapes[0]), codes(rng, shapes[1])
    s1, s2, so = scales if op != "MAXIMUM" else (scales[0],) * 3
    opts = {"ADD": tfl.AddOptionsT, "SUB": tfl.SubOptionsT, "MUL": tfl.MulOptionsT, "MAXIMUM": lambda: None}[op]()
    if op in ("ADD", "SUB"):
        opts.potScaleInt16 = False
    model = build_single_op(op, [q("a", a.shape, s1), q("b", b.shape, s2)], [q("y", a.shape, so)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(abuf, 1, 1, 8, 8, "ws"))
    elts = [i for i in prog.program.instructions if isinstance(i, I.Elementwise)]
    assert elts and all(i.elem == 2 for i in elts)
    check(prog, model, [a, b])


@SETTINGS
@given(tanh=st.booleans(), n=st.integers(1, 3000), scale=st.floats(1e-5, 1.0), seed=st.integers(0, 2 ** 16))
def test_logistic_tanh_16x8_sim(tmp_path, tanh, n, scale, seed):
    x = codes(np.random.default_rng(seed), (1, n))
    model = build_single_op("TANH" if tanh else "LOGISTIC", [q("x", x.shape, scale)], [q("y", x.shape, ONE)])
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    assert any(isinstance(i, I.Sigmoid16) for i in prog.program.instructions)
    check(prog, model, [x])


@SETTINGS
@given(rows=st.integers(1, 20), cols=st.integers(1, 200), scale=st.floats(1e-5, 1e-2), seed=st.integers(0, 2 ** 16))
def test_softmax_16x8_sim(tmp_path, rows, cols, scale, seed):
    x = codes(np.random.default_rng(seed), (rows, cols))
    opts = tfl.SoftmaxOptionsT()
    opts.beta = 1.0
    model = build_single_op("SOFTMAX", [q("x", x.shape, scale)], [q("y", x.shape, ONE)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(4, 1, 1, 8, 8, "ws"))
    assert {i.kind for i in prog.program.instructions if isinstance(i, I.Softmax)} == {2}
    check(prog, model, [x])


@SETTINGS
@given(shape=st.sampled_from([(1, 6, 9, 5), (2, 4, 4, 33), (1, 1, 30, 3)]), axes=st.sampled_from([(1, 2), (2,), (3,)]),
       keep=st.booleans(), s_in=st.floats(1e-5, 1e-2), s_out=st.floats(1e-5, 1e-2), seed=st.integers(0, 2 ** 16))
def test_mean_16x8_sim(tmp_path, shape, axes, keep, s_in, s_out, seed):
    x = codes(np.random.default_rng(seed), shape)
    out = np.zeros(shape).sum(axis=axes, keepdims=keep).shape
    opts = tfl.ReducerOptionsT()
    opts.keepDims = keep
    axis = TensorSpec("axis", (len(axes),), "int32", data=np.array(axes, np.int32))
    model = build_single_op("MEAN", [q("x", shape, s_in), axis], [q("y", out, s_out)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    check(prog, model, [x])


@SETTINGS
@given(hw=st.tuples(st.integers(2, 12), st.integers(2, 12)), c=st.integers(1, 20), k=st.integers(1, 3),
       stride=st.integers(1, 2), same=st.booleans(), average=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_pool_16x8_sim(tmp_path, hw, c, k, stride, same, average, seed):
    assume(same or min(hw) >= k)
    x = codes(np.random.default_rng(seed), (1, *hw, c))
    opts = tfl.Pool2DOptionsT()
    opts.padding = tfl.Padding.SAME if same else tfl.Padding.VALID
    opts.strideH = opts.strideW = stride
    opts.filterHeight = opts.filterWidth = k
    out_hw = [-(-n // stride) if same else (n - k) // stride + 1 for n in hw]
    model = build_single_op("AVERAGE_POOL_2D" if average else "MAX_POOL_2D", [q("x", x.shape, 1e-3)],
                            [q("y", (1, *out_hw, c), 1e-3)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    check(prog, model, [x])


@SETTINGS
@given(hw=st.tuples(st.integers(1, 6), st.integers(1, 6)), out=st.tuples(st.integers(1, 12), st.integers(1, 12)),
       c=st.integers(1, 9), bilinear=st.booleans(), flags=st.sampled_from([(False, False), (True, False), (False, True)]),
       seed=st.integers(0, 2 ** 16))
def test_resize_16x8_sim(tmp_path, hw, out, c, bilinear, flags, seed):
    x = codes(np.random.default_rng(seed), (1, *hw, c))
    opts = tfl.ResizeBilinearOptionsT() if bilinear else tfl.ResizeNearestNeighborOptionsT()
    opts.alignCorners, opts.halfPixelCenters = flags
    size = TensorSpec("size", (2,), "int32", data=np.array(out, np.int32))
    op = "RESIZE_BILINEAR" if bilinear else "RESIZE_NEAREST_NEIGHBOR"
    model = build_single_op(op, [q("x", x.shape, 1e-3), size], [q("y", (1, *out, c), 1e-3)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    check(prog, model, [x])


def test_int16_vpu_charges_twice_the_bytes(tmp_path):
    """An int16 ELEMENTWISE moves twice the SRAM bytes of the same int8 instruction, in as many
    VPU cycles (the lanes are 32 bits wide)."""
    a = codes(np.random.default_rng(1), (1, 8, 8, 16))
    opts = tfl.AddOptionsT()
    opts.potScaleInt16 = False
    model = build_single_op("ADD", [q("a", a.shape, 1e-3), q("b", a.shape, 2e-3)], [q("y", a.shape, 3e-3)], opts)
    arch = load_arch("npu-s")
    prog = compile_bytes(tmp_path, model, arch)
    add = next(i for i in prog.program.instructions if isinstance(i, I.Elementwise))
    model_t = _Model(prog.program, arch)
    c16, c8 = Counts(), Counts()
    t16, t8 = model_t.latency(add, c16), model_t.latency(replace(add, elem=1), c8)
    assert t16 == t8 > 0 and c16.sram_bytes[I.ABUF] == 2 * c8.sram_bytes[I.ABUF] > 0
    dmas = [i for i in prog.program.instructions if isinstance(i, I.Dma)]
    assert sum(int(np.prod(d.shape)) * d.elem for d in dmas) == 3 * a.nbytes     # two in, one out, 2 B each


@pytest.mark.parametrize("bad", [{"elem": 3}, {"elem": 0}])
def test_corrupt_int16_fields_are_refused(tmp_path, bad):
    from npukit.sim.functional import Simulator
    a = codes(np.random.default_rng(2), (1, 4, 4, 8))
    model = build_single_op("TANH", [q("x", a.shape, 1e-3)], [q("y", a.shape, ONE)])
    prog = compile_bytes(tmp_path, model, "npu-s")
    sig = next(i for i in prog.program.instructions if isinstance(i, I.Sigmoid16))
    spaces = {I.ABUF: prog.arch.abuf_bytes, I.WBUF: prog.arch.wbuf_bytes, I.ACC: prog.arch.acc_bytes}
    for broken in (replace(sig, qparams=(7, 1, 1)), replace(sig, qparams=(1, 1 << 20, 3))):
        ins = [broken if i is sig else i for i in prog.program.instructions]
        with pytest.raises(BinaryError, match="SIGMOID16"):
            Simulator(replace(prog.program, instructions=ins), spaces).run({prog.input_names[0]: a})
    elt = I.Elementwise(0, (), int(I.Eltwise.ADD), I.ABUF, 0, I.ABUF, 64, (1, 1), 128, 1, 8, (), **bad)
    with pytest.raises(BinaryError, match="element size"):
        Simulator(replace(prog.program, instructions=[elt]), spaces).run({prog.input_names[0]: a})


@pytest.mark.parametrize("op", ["ADD", "MUL"])
@pytest.mark.parametrize("bshape", [(1, 5, 7, 6), (6,)])
def test_constant_int16_operand(tmp_path, op, bshape):
    """A constant int16 operand (whole or per channel) is read from the constant image in 2-byte elements."""
    rng = np.random.default_rng(4)
    b = codes(rng, bshape)
    opts = tfl.AddOptionsT() if op == "ADD" else tfl.MulOptionsT()
    if op == "ADD":
        opts.potScaleInt16 = False
    model = build_single_op(op, [q("a", (1, 5, 7, 6), 1e-3), TensorSpec("b", bshape, "int16", 2e-3, 0, data=b)],
                            [q("y", (1, 5, 7, 6), 3e-3)], opts)
    prog = compile_bytes(tmp_path, model, small_arch(2, 1, 1, 8, 8, "ws"))
    check(prog, model, [codes(rng, (1, 5, 7, 6))])

"""A softmax row too long for ABUF runs in chunks (SOFTMAX phases: maximum, sum, outputs, the
row state in ABUF between chunks): the instruction sequence equals the whole-row kernels bit
for bit, a 20,000-class softmax compiled for npu-s runs on the NPU alone and equals LiteRT and
the integer reference, a row that fits keeps its one-instruction form and encoding, and a
corrupt phase is refused at load with one line."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

import npukit
from npukit.cost.timing import SOFTMAX_OPS_PER_ELEMENT, _vpu_ops
from npukit.errors import BinaryError
from npukit.isa import container, encoding
from npukit.isa import instructions as I
from npukit.isa.immediates import params_to_ints
from npukit.kernels import kernels_vpu as kv
from npukit.kernels import kernels_vpu16 as k16
from npukit.sim.machine import Machine
from npukit.sim.reference import run_reference as int_reference
from npukit.sim.semantics import execute
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_default, run_reference

STATE, OUT = 60_000, 30_000         # ABUF addresses of the row state and the output chunk


def _params(kind: int, rng):
    if kind == 2:
        return k16.prepare_softmax16(float(rng.uniform(1e-4, 1e-2)), 0, 1.0, k16.OUT_SCALE_16, 0), k16.softmax16
    prepare = kv.prepare_softmax_table if kind else kv.prepare_softmax
    return prepare(float(rng.uniform(0.01, 0.5)), 1.0, 1 / 256, -128), kv.softmax


def _run_chunks(x: np.ndarray, q: tuple[int, ...], kind: int, cw: int) -> np.ndarray:
    """The three passes over chunks of `cw` columns, on the simulator's semantics."""
    m = Machine({I.ABUF: 1 << 16, I.WBUF: 64, I.ACC: 64}, [])
    rows, cols = x.shape
    out = np.zeros_like(x)
    for first, rest in ((I.SOFTMAX_MAX_FIRST, I.SOFTMAX_MAX), (I.SOFTMAX_SUM,) * 2, (I.SOFTMAX_OUT,) * 2):
        for c0 in range(0, cols, cw):
            chunk = np.ascontiguousarray(x[:, c0:c0 + cw])
            m.view(I.ABUF, 0, chunk.shape, x.dtype)[...] = chunk
            phase = rest if c0 else first
            execute(m, I.Softmax(0, (), 0, rows, chunk.shape[1], OUT, q, kind, phase, STATE))
            if phase == I.SOFTMAX_OUT:
                out[:, c0:c0 + cw] = m.view(I.ABUF, OUT, chunk.shape, x.dtype)
    return out


@pytest.mark.parametrize("kind", [0, 1, 2])
def test_phases_over_chunks_equal_the_whole_row_kernel(kind):
    rng = np.random.default_rng(kind)
    for _ in range(25):
        p, whole = _params(kind, rng)
        rows, cw, chunks = int(rng.integers(1, 5)), int(rng.integers(1, 60)), int(rng.integers(2, 8))
        cols = cw * (chunks - 1) + int(rng.integers(1, cw + 1))
        info = np.iinfo(np.int16 if kind == 2 else np.int8)
        spread = int(rng.integers(1, info.max - info.min + 1))
        x = (info.max - rng.integers(0, spread, (rows, cols))).astype(info.dtype)
        np.testing.assert_array_equal(_run_chunks(x, params_to_ints(p), kind, cw), whole(x, p))


def _model(rows: int, cols: int, dtype: str, scale: float) -> bytes:
    opts = tfl.SoftmaxOptionsT()
    opts.beta = 1.0
    int8 = dtype == "int8"
    return build_single_op("SOFTMAX", [TensorSpec("x", (rows, cols), dtype, scale, 7 if int8 else 0)],
                           [TensorSpec("y", (rows, cols), dtype, 1 / 256 if int8 else 1 / 32768, -128 if int8 else 0)],
                           opts)


def _peaked(rng, rows: int, cols: int) -> np.ndarray:
    """Rows of low codes with a few high ones: LiteRT's reference int8 kernel aborts (a check on
    its output shift) once a row's sum of exponentials reaches 256."""
    x = rng.integers(-128, 60, (rows, cols))
    for r in range(rows):
        x[r, rng.integers(0, cols, 5)] = rng.integers(100, 128, 5)
    return x.astype(np.int8)


# (dtype, input scale, LiteRT's kernel, SOFTMAX kind): the reference fixed-point kernel, the default
# float32 table kernel below the reference's scale, int16 (16x8)
LONG_ROWS = [("int8", 0.1, run_reference, 0), ("int8", 1e-12, run_default, 1), ("int16", 3e-4, run_reference, 2)]


@pytest.mark.parametrize("dtype,scale,litert,kind", LONG_ROWS)
def test_a_20000_class_softmax_runs_on_npu_s_and_equals_litert(dtype, scale, litert, kind, tmp_path):
    rows, cols = 3, 20_000
    model = _model(rows, cols, dtype, scale)
    path = tmp_path / "softmax.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-s")
    assert all(layer.target == "npu" for layer in prog.program.layers)
    sm = [i for i in prog.program.instructions if isinstance(i, I.Softmax)]
    assert {i.kind for i in sm} == {kind} and I.SOFTMAX_WHOLE not in {i.phase for i in sm}
    per_element = sum(_vpu_ops(i) for i in sm) / (rows * cols)     # each pass covers every element once
    assert per_element == 1 + 3 + 4 > SOFTMAX_OPS_PER_ELEMENT
    rng = np.random.default_rng(kind)
    order = list(np.lexsort((np.arange(len(prog.timeline().start)), prog.timeline().start)))
    for _ in range(2):
        x = rng.integers(-32768, 32768, (rows, cols)).astype(np.int16) if kind == 2 else _peaked(rng, rows, cols)
        want = litert(model, [x])[0]
        feeds = {prog.input_names[0]: x}
        np.testing.assert_array_equal(prog.run(feeds)["y"], want)
        np.testing.assert_array_equal(int_reference(prog.qgraph, feeds)["y"], want)
        np.testing.assert_array_equal(prog.run_int(feeds, order=order)["y"], want)


def test_a_row_that_fits_keeps_its_one_instruction_encoding(tmp_path):
    path = tmp_path / "softmax.tflite"
    path.write_bytes(_model(4, 1000, "int8", 0.1))
    prog = npukit.compile(path, "npu-s")
    sm = [i for i in prog.program.instructions if isinstance(i, I.Softmax)]
    assert sm and all(i.phase == I.SOFTMAX_WHOLE and i.rows * i.cols == 4000 for i in sm)
    s = sm[0]
    words = np.frombuffer(encoding.encode([s]), "<i8").tolist()
    # opcode with no extension words, layer, deps, then the first format's fields only
    assert words == [I.OPCODES.index(I.Softmax), s.layer, len(s.deps), *s.deps, s.src, s.rows, s.cols, s.dst,
                     len(s.qparams), *s.qparams]


def test_a_corrupt_phase_or_kind_is_refused_at_load(tmp_path):
    path = tmp_path / "softmax.tflite"
    path.write_bytes(_model(1, 20_000, "int8", 0.1))
    data = npukit.compile(path, "npu-s").to_bytes()
    npukit.loads(data)
    sections, meta = container.unpack(data)
    program = encoding.decode(sections["code"])
    at = next(k for k, ins in enumerate(program) if isinstance(ins, I.Softmax) and ins.phase == I.SOFTMAX_SUM)
    for field, value in (("phase", 9), ("phase", -1), ("kind", 7)):
        crafted = list(program)
        crafted[at] = type(program[at])(**{**vars(program[at]), field: value})
        with pytest.raises(BinaryError) as e:
            npukit.loads(container.pack({**sections, "code": encoding.encode(crafted)}, meta))
        message = str(e.value)
        assert "\n" not in message and "SOFTMAX" in message and f"{field} {value}" in message, message

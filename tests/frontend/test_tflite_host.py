"""TFLite builtins without an NPU lowering run on the host in LiteRT: compiled and run, an int8
model equals LiteRT's reference interpreter element for element (the whole model, NPU and
host layers together); a float model agrees with LiteRT's float run within a few
quantisation steps. CUSTOM operators without a lowering stay refused."""
from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.api import loads
from npukit.errors import UnsupportedOpError
from npukit.frontend.tflite_ops import CONVERTERS
from npukit.testing.tflite_builder import Operator, build_model, build_single_op, run_reference
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.fixtures import run_cli
from npukit.testing.tflite_builder import options as _opts

ROOT = Path(__file__).resolve().parents[2]


def _i32(*values) -> np.ndarray:
    return np.asarray(values, np.int32)


def _x(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape).astype(np.int8)


X = T("x", (2, 5, 6), scale=0.05, zero_point=3)
CASES = {
    "TOPK_V2": ([X, T("k", (1,), "int32", data=_i32(3))],
                [T("v", (2, 5, 3), scale=0.05, zero_point=3), T("i", (2, 5, 3), "int32")], None),
    "TILE": ([X, T("multiples", (3,), "int32", data=_i32(1, 2, 1))], [T("y", (2, 10, 6), scale=0.05, zero_point=3)],
             tfl.TileOptionsT()),
    "SQUARED_DIFFERENCE": ([X, T("b", (2, 5, 6), scale=0.04, zero_point=-7)],
                           [T("y", (2, 5, 6), scale=0.2, zero_point=-128)], tfl.SquaredDifferenceOptionsT()),
    "GATHER_ND": ([X, T("idx", (3, 2), "int32", data=_i32([1, 4], [0, 0], [1, 2]))],
                  [T("y", (3, 6), scale=0.05, zero_point=3)], None),
    # SYMMETRIC mirror padding (the edge repeated); REFLECT runs on the NPU
    "MIRROR_PAD": ([X, T("pads", (3, 2), "int32", data=_i32([0, 0], [1, 1], [2, 2]))],
                   [T("y", (2, 7, 10), scale=0.05, zero_point=3)],
                   _opts(tfl.MirrorPadOptionsT, mode=tfl.MirrorPadMode.SYMMETRIC)),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_host_operator_equals_litert_reference(op, tmp_path):
    assert op not in CONVERTERS or op == "MIRROR_PAD"    # no NPU lowering (of this mode)
    inputs, outputs, options = CASES[op]
    model = build_single_op(op, inputs, outputs, options)
    path = tmp_path / f"{op}.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    rng = np.random.default_rng(len(op))
    for _ in range(4):
        xs = [_x(rng, t.shape) for t in inputs if t.data is None]
        got = prog.run(dict(zip(prog.input_names, xs)))
        for name, want in zip(prog.output_names, run_reference(model, xs)):
            assert got[name].dtype == want.dtype
            np.testing.assert_array_equal(got[name], want, err_msg=f"{op} output {name}")
    host = prog.profile().host_ops
    assert {h["reason"].split(":")[0] for h in host} == {f"no NPU kernel for TFLite {op}"}
    assert len(host) == 1                # one host layer for the operator, all its outputs


def test_refusing_converter_leaves_nothing_behind(tmp_path):
    """SPLIT's converter emits a slice per output and refuses the second (its quantisation
    differs from the input's): the operator runs whole on the host, LiteRT's way."""
    model = build_single_op("SPLIT", [T("axis", (1,), "int32", data=_i32(2)), X],
                            [T("a", (2, 5, 3), scale=0.05, zero_point=3), T("b", (2, 5, 3), scale=0.1, zero_point=3)],
                            _opts(tfl.SplitOptionsT, numSplits=2))
    path = tmp_path / "split.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    assert [(n.op.value, len(n.outputs)) for n in prog.qgraph.nodes] == [("host_tflite", 2)]
    assert all("input and output quantisation differ" in h["reason"] for h in prog.profile().host_ops)
    x = _x(np.random.default_rng(0), X.shape)
    got = prog.run({prog.input_names[0]: x})
    for name, want in zip(prog.output_names, run_reference(model, [x])):
        np.testing.assert_array_equal(got[name], want)


def test_multi_output_operator_runs_once_per_inference(tmp_path, monkeypatch):
    """TOPK_V2 of a float model is one host node with both outputs: LiteRT invokes it once per
    calibration sample and once per inference, and the host is costed for one run (its
    elements: the input and the two outputs, each counted once)."""
    from ai_edge_litert.interpreter import Interpreter

    from npukit.arch import load_arch
    from npukit.ptq import quantise
    from npukit.frontend.tflite import load_tflite

    x = T("x", (2, 5, 6), "float32")
    outputs = [T("v", (2, 5, 3), "float32"), T("i", (2, 5, 3), "int32")]
    model = build_single_op("TOPK_V2", [x, T("k", (1,), "int32", data=_i32(3))], outputs)
    path = tmp_path / "topk.tflite"
    path.write_bytes(model)
    calls = []
    invoke = Interpreter.invoke
    monkeypatch.setattr(Interpreter, "invoke", lambda it: calls.append(it) or invoke(it))
    rng = np.random.default_rng(6)
    calib = rng.uniform(-1, 1, (5, *x.shape)).astype(np.float32)
    quantise(load_tflite(path), {"x": calib}, sqnr=False)
    assert len(calls) == len(calib)
    prog = npu_compile(path, "npu-m", calibration={"x": calib})
    for _ in range(3):
        xs = rng.uniform(-1, 1, x.shape).astype(np.float32)
        calls.clear()
        got = prog.run({"x": xs})
        assert len(calls) == 1
        for name, want in zip(prog.output_names, run_reference(model, [xs])):
            assert got[name].dtype == want.dtype
            np.testing.assert_array_equal(got[name], want)
    arch = load_arch("npu-m")
    elements = sum(int(np.prod(t.shape)) for t in [x, *outputs])
    want_uj = arch.host.cycles("other", elements) * arch.host.pj_per_cycle * 1e-6
    assert prog.profile().energy_breakdown_uj["host"] == pytest.approx(want_uj)


def _conv(name: str, x: T, y: T, rng, float_model: bool) -> Operator:
    cin, cout = x.shape[-1], y.shape[-1]
    if float_model:
        w = T(f"{name}_w", (cout, 3, 3, cin), "float32", data=rng.normal(0, 0.3, (cout, 3, 3, cin)).astype(np.float32))
        b = T(f"{name}_b", (cout,), "float32", data=rng.normal(0, 0.1, cout).astype(np.float32))
    else:
        ws = rng.uniform(0.002, 0.01, cout).astype(np.float32)
        w = T(f"{name}_w", (cout, 3, 3, cin), scale=ws, zero_point=[0] * cout,
              data=rng.integers(-127, 128, (cout, 3, 3, cin)).astype(np.int8))
        b = T(f"{name}_b", (cout,), "int32", scale=ws * x.scale, zero_point=[0] * cout,
              data=rng.integers(-500, 500, cout).astype(np.int32))
    return Operator("CONV_2D", (x, w, b), (y,), _opts(tfl.Conv2DOptionsT, padding=tfl.Padding.SAME, strideH=1,
                                                      strideW=1, dilationHFactor=1, dilationWFactor=1))


def _sandwich(middle: str, float_model: bool, rng) -> bytes:
    """conv -> `middle` (no NPU lowering: TILE by ones, or CUMSUM along W) -> conv, NHWC 1x6x6x4."""
    kw = {"dtype": "float32"} if float_model else {}
    q = (lambda s, z: {}) if float_model else (lambda s, z: {"scale": s, "zero_point": z})
    x, a = T("x", (1, 6, 6, 4), **kw, **q(0.04, -2)), T("a", (1, 6, 6, 8), **kw, **q(0.06, 5))
    b, y = T("b", (1, 6, 6, 8), **kw, **q(0.06, 5)), T("y", (1, 6, 6, 4), **kw, **q(0.08, -1))
    axis = T("multiples", (4,), "int32", data=_i32(1, 1, 1, 1)) if middle == "TILE" else \
        T("axis", (1,), "int32", data=_i32(2))
    options = tfl.TileOptionsT() if middle == "TILE" else tfl.CumsumOptionsT()
    ops = [_conv("c1", x, a, rng, float_model), Operator(middle, (a, axis), (b,), options),
           _conv("c2", b, y, rng, float_model)]
    return build_model(ops, [x], [y])


def test_npu_host_npu_model_is_bit_exact(tmp_path):
    model = _sandwich("TILE", False, np.random.default_rng(1))
    path = tmp_path / "sandwich.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    targets = [la.target for la in prog.program.layers]
    assert targets == ["npu", "host", "npu"]
    loaded = loads(prog.to_bytes())          # the host operator travels inside the .npub
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = _x(rng, (1, 6, 6, 4))
        want = run_reference(model, [x])[0]
        np.testing.assert_array_equal(prog.run({"x": x})["y"], want)
        np.testing.assert_array_equal(loaded.run({"x": x})["y"], want)


def test_float_model_host_operator_runs_in_float(tmp_path):
    """CUMSUM has no int8 kernel in LiteRT: in a float model npukit quantises, it runs in float
    on the host between two int8 NPU convolutions."""
    rng = np.random.default_rng(3)
    model = _sandwich("CUMSUM", True, rng)
    path = tmp_path / "float_sandwich.tflite"
    path.write_bytes(model)
    calib = rng.uniform(-1, 1, (16, 1, 6, 6, 4)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib})
    assert [la.target for la in prog.program.layers] == ["npu", "host", "npu"]
    step = prog.program.outputs[0].scale
    for k in range(4):
        x = rng.uniform(-1, 1, (1, 6, 6, 4)).astype(np.float32)
        want = run_reference(model, [x])[0]
        err = np.abs(prog.run({"x": x})["y"] - want)
        assert np.max(err) <= 4 * step, (k, np.max(err) / step)


def _custom(tmp_path) -> Path:
    model = tfl.ModelT.InitFromPackedBuf(bytearray(build_single_op("CUSTOM", [X], [X])), 0)
    model.operatorCodes[0].customCode = b"MyFancyOp"
    import flatbuffers
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "custom.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def test_custom_operator_is_refused_in_one_line(tmp_path):
    path = _custom(tmp_path)
    with pytest.raises(UnsupportedOpError, match=r"operator 0 \(CUSTOM:MyFancyOp\)"):
        npu_compile(path, "npu-m")
    r = run_cli("compile", path, "-o", tmp_path / "c.npub", cwd=ROOT, timeout=300)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "MyFancyOp" in lines[0] and "operator 0" in lines[0], r.stderr


def _dim(dense_size=0, segments=None, indices=None) -> tfl.DimensionMetadataT:
    d = tfl.DimensionMetadataT()
    d.format = tfl.DimensionType.DENSE if segments is None else tfl.DimensionType.SPARSE_CSR
    d.denseSize = dense_size
    if segments is not None:
        d.arraySegmentsType = d.arrayIndicesType = tfl.SparseIndexVector.Int32Vector
        d.arraySegments, d.arrayIndices = tfl.Int32VectorT(), tfl.Int32VectorT()
        d.arraySegments.values, d.arrayIndices.values = list(segments), list(indices)
    return d


def _block_sparse(w: np.ndarray, block: int) -> tuple[np.ndarray, tfl.SparsityParametersT]:
    """`w` [rows, cols] encoded as TFLite stores pruned weights: rows dense, column blocks of
    `block` in CSR (all-zero blocks dropped), each block's values dense."""
    rows, cols = w.shape
    segments, indices, values = [0], [], []
    for r in range(rows):
        for c in range(cols // block):
            chunk = w[r, c * block:(c + 1) * block]
            if chunk.any():
                indices.append(c)
                values.extend(chunk)
        segments.append(len(indices))
    sp = tfl.SparsityParametersT()
    sp.traversalOrder, sp.blockMap = [0, 1, 2], [1]
    sp.dimMetadata = [_dim(rows), _dim(0, segments, indices), _dim(block)]
    return np.asarray(values, w.dtype), sp


def test_densify_of_a_sparse_constant_is_folded(tmp_path):
    from npukit.frontend.tflite import load_tflite

    rng = np.random.default_rng(4)
    w = rng.integers(-127, 128, (8, 16)).astype(np.int8)
    w[rng.random((8, 4)).repeat(4, axis=1) < 0.6] = 0          # prune 1x4 blocks
    values, sp = _block_sparse(w, 4)
    sparse = T("w_sparse", (8, 16), scale=0.01, data=values, sparsity=sp)
    dense = T("w", (8, 16), scale=0.01)
    x, y = T("x", (2, 16), scale=0.05, zero_point=-3), T("y", (2, 8), scale=0.2, zero_point=4)
    model = build_model([Operator("DENSIFY", (sparse,), (dense,)),
                         Operator("FULLY_CONNECTED", (x, dense, T("", ())), (y,), tfl.FullyConnectedOptionsT())],
                        [x], [y])
    path = tmp_path / "sparse_fc.tflite"
    path.write_bytes(model)
    g = load_tflite(path)
    assert [n.op.value for n in g.nodes] == ["fully_connected"]
    np.testing.assert_array_equal(g.tensors[g.nodes[0].inputs[1]].data, w)
    prog = npu_compile(path, "npu-m")
    assert prog.profile().host_ops == []
    for _ in range(4):
        xs = _x(rng, (2, 16))
        np.testing.assert_array_equal(prog.run({"x": xs})["y"], run_reference(model, [xs])[0])


def test_float_island_inside_an_int8_model_runs_on_the_host(tmp_path):
    """conv -> DEQUANTIZE -> float TANH -> QUANTIZE -> conv: the float operators run on the
    host in LiteRT, the convolutions on the NPU, and the whole equals LiteRT's reference."""
    rng = np.random.default_rng(5)
    x, a = T("x", (1, 6, 6, 4), scale=0.04, zero_point=-2), T("a", (1, 6, 6, 8), scale=0.06, zero_point=5)
    af, bf = T("af", (1, 6, 6, 8), "float32"), T("bf", (1, 6, 6, 8), "float32")
    b, y = T("b", (1, 6, 6, 8), scale=1 / 128, zero_point=0), T("y", (1, 6, 6, 4), scale=0.08, zero_point=-1)
    model = build_model([_conv("c1", x, a, rng, False), Operator("DEQUANTIZE", (a,), (af,)),
                         Operator("TANH", (af,), (bf,)), Operator("QUANTIZE", (bf,), (b,)),
                         _conv("c2", b, y, rng, False)], [x], [y])
    path = tmp_path / "island.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    assert [la.target for la in prog.program.layers] == ["npu", "host", "host", "host", "npu"]
    assert all(h["reason"].endswith("float tensors inside an int8 model") for h in prog.profile().host_ops)
    for _ in range(4):
        xs = _x(rng, (1, 6, 6, 4))
        np.testing.assert_array_equal(prog.run({"x": xs})["y"], run_reference(model, [xs])[0])


def _embedded(section: list, edit) -> list:
    """The host section with each HOST_TFLITE flatbuffer replaced by `edit(ModelT)`'s."""
    import flatbuffers

    def rebuilt(attrs: dict) -> dict:
        flat = tfl.ModelT.InitFromPackedBuf(bytearray(base64.b64decode(attrs["model"])), 0)
        edit(flat)
        b = flatbuffers.Builder(1024)
        b.Finish(flat.Pack(b), file_identifier=b"TFL3")
        return {**attrs, "model": base64.b64encode(bytes(b.Output())).decode()}
    return [{**s, "attrs": rebuilt(s["attrs"])} if s["kind"] == "host_tflite" else s for s in section]


@pytest.mark.parametrize("edit, expect", [
    (lambda m: [setattr(m.operatorCodes[0], f, tfl.BuiltinOperator.CUSTOM) for f in ("builtinCode", "deprecatedBuiltinCode")],
     "custom TFLite operator"),
    (lambda m: setattr(m.subgraphs[0].operators[0], "inputs", [0, 99]), "99"),
    (lambda m: m.subgraphs[0].operators.append(m.subgraphs[0].operators[0]), "main subgraph must hold one operator"),
    (lambda m: setattr(m.subgraphs[0].tensors[0].quantization, "scale", [float("nan")]), "scale"),
])
def test_embedded_flatbuffer_is_checked_at_load(tmp_path, edit, expect):
    """A crafted binary's host TFLite operator (CRC-valid) is refused at load, as the importer
    would refuse the same flatbuffer, never run."""
    import json

    from npukit.errors import BinaryError
    from npukit.isa import container

    inputs, outputs, options = CASES["TILE"]
    path = tmp_path / "tile.tflite"
    path.write_bytes(build_single_op("TILE", inputs, outputs, options))
    sections, meta = container.unpack(npu_compile(path, "npu-m").to_bytes())
    sections["host"] = json.dumps(_embedded(json.loads(sections["host"]), edit)).encode()
    with pytest.raises(BinaryError, match=expect) as err:
        loads(container.pack(sections, meta))
    assert "host segment 0" in str(err.value) and "\n" not in str(err.value)

"""A TFLite IF on a computed condition (data-dependent control flow) runs as one host segment,
LiteRT running the IF with its then/else subgraphs; the NPU runs what comes before and after.
An int8 model equals LiteRT's reference interpreter element for element on inputs taking
either branch; a float model (quantised by npukit) takes the float model's branch and agrees
within a few quantisation steps."""
from __future__ import annotations

import base64

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.api import loads
from npukit.cost.timing import host_cycles
from npukit.errors import ModelError
from npukit.quant.records import decode_node
from npukit.sim.segments import check_tflite_model
from npukit.testing.tflite_builder import Operator, Subgraph, build_model, run_default, run_reference
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import options as _opts


def _model(dtype: str) -> bytes:
    """y = x + 1; cond = mean(y) > 0.5; z = IF(cond, y, mean): then y * 3 - mean, else y - 2;
    out = z + 0.25 (after the IF, on the NPU; a 0-d constant, as hey_jarvis's epsilon)."""
    q8 = dtype == "int8"

    def t(name, shape=(1, 8), scale=0.05, zp=-10, data=None):
        if data is not None and q8:
            data = np.clip(np.round(np.asarray(data) / scale) + zp, -128, 127).astype(np.int8)
        return T(name, shape, dtype, scale if q8 else None, zp if q8 else 0,
                 data=None if data is None else np.asarray(data, np.int8 if q8 else np.float32))

    x, y, m, z, out = t("x"), t("y"), t("m", (1, 1)), t("z", scale=0.1, zp=0), t("out", scale=0.1, zp=0)
    one, half, quarter = t("one", data=np.ones((1, 8))), t("half", (1, 1), data=[[0.5]]), \
        t("quarter", (), scale=0.1, zp=0, data=0.25)
    axis = T("axis", (1,), "int32", data=np.array([1], np.int32))
    cond, flag = T("cond", (1, 1), "bool"), T("flag", (), "bool")
    shape0 = T("shape0", (0,), "int32", data=np.zeros(0, np.int32))
    # the branches: inputs (y, m), output z
    by, bm, bz = t("by"), t("bm", (1, 1)), t("bz", scale=0.1, zp=0)
    three, two = t("three", (1, 1), scale=0.1, zp=0, data=[[3.0]]), t("two", (1, 1), data=[[2.0]])
    y3 = t("y3", scale=0.1, zp=0)
    then = Subgraph((Operator("MUL", (by, three), (y3,), tfl.MulOptionsT()),
                     Operator("SUB", (y3, bm), (bz,), tfl.SubOptionsT(), version=2)), (by, bm), (bz,), "then")
    other = Subgraph((Operator("SUB", (by, two), (bz,), tfl.SubOptionsT(), version=2),), (by, bm), (bz,), "else")
    ops = [Operator("ADD", (x, one), (y,), tfl.AddOptionsT()),
           Operator("MEAN", (y, axis), (m,), _opts(tfl.ReducerOptionsT, keepDims=True)),
           Operator("GREATER", (m, half), (cond,), None),
           Operator("RESHAPE", (cond, shape0), (flag,), None),
           Operator("IF", (flag, y, m), (z,), _opts(tfl.IfOptionsT, thenSubgraphIndex=1, elseSubgraphIndex=2)),
           Operator("ADD", (z, quarter), (out,), tfl.AddOptionsT())]
    return build_model(ops, [x], [out], subgraphs=(then, other))


def _inputs(dtype: str, rng) -> list[np.ndarray]:
    """Inputs around the branch point: means of x + 1 both sides of 0.5."""
    real = [rng.normal(c, 0.4, (1, 8)) for c in (-1.2, -0.8, -0.3, 0.1, 0.4)]
    if dtype == "int8":
        return [np.clip(np.round(r / 0.05) - 10, -128, 127).astype(np.int8) for r in real]
    return [r.astype(np.float32) for r in real]


def _branch(x: np.ndarray, dtype: str) -> bool:
    real = (x.astype(np.float32) + 10) * 0.05 if dtype == "int8" else x
    return float(np.mean(real + 1)) > 0.5


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_if_runs_on_the_host_and_equals_litert(dtype, tmp_path):
    model = _model(dtype)
    path = tmp_path / f"if_{dtype}.tflite"
    path.write_bytes(model)
    rng = np.random.default_rng(7)
    xs = _inputs(dtype, rng)
    calib = {"x": np.concatenate(xs)[:, None]} if dtype == "float32" else None
    prog = npu_compile(path, "npu-m", calibration=calib)
    taken = {_branch(x, dtype) for x in xs}
    assert taken == {True, False}               # the inputs take both branches
    for x in xs:
        got = prog.run({"x": x})["out"]
        want = run_reference(model, [x])[0]
        if dtype == "int8":
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        else:   # a few steps of the output's scale (calibrated range / 255)
            step = (float(np.max(want)) - float(np.min(want)) + 3) / 255
            np.testing.assert_allclose(got, want, atol=4 * step)
    host = prog.profile().host_ops
    assert [(h["op"], h["reason"]) for h in host] == [("host_tflite", "no NPU kernel for TFLite IF")]
    # the condition is computed on the NPU, the IF is the one host layer, the ADD after it is
    # back on the NPU; the host layer has its cost in the profile
    assert [(la.op, la.target) for la in prog.program.layers] == [
        ("add", "npu"), ("mean", "npu"), ("compare", "npu"), ("reshape", "npu"), ("host_tflite", "host"),
        ("add", "npu")]
    (if_layer,) = [la for la in prog.profile().layers if la.name == host[0]["name"]]
    assert if_layer.cycles > 0 and if_layer.energy_uj > 0


def test_if_segment_survives_the_binary_and_its_check(tmp_path):
    """The binary carries the IF's subgraphs: saved, loaded and run it gives the same; an
    embedded flatbuffer with a subgraph nothing calls is refused at load."""
    path = tmp_path / "if.tflite"
    path.write_bytes(_model("int8"))
    prog = npu_compile(path, "npu-m")
    again = loads(prog.to_bytes())
    for x in _inputs("int8", np.random.default_rng(3)):
        np.testing.assert_array_equal(again.run({"x": x})["out"], prog.run({"x": x})["out"])
    (seg,) = again.program.host_segments
    text = decode_node(seg, again.program.host_blobs).attrs.model
    flat = tfl.ModelT.InitFromPackedBuf(bytearray(base64.b64decode(text)), 0)
    assert sorted(s.name for s in flat.subgraphs[1:]) == [b"else", b"then"]
    check_tflite_model(text)
    options = flat.subgraphs[0].operators[0].builtinOptions
    options.elseSubgraphIndex = options.thenSubgraphIndex       # one subgraph now uncalled
    b = flatbuffers.Builder(1024)
    b.Finish(flat.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ModelError, match="control flow calls"):
        check_tflite_model(base64.b64encode(bytes(b.Output())).decode())


def test_while_on_a_computed_condition_equals_litert(tmp_path):
    """y = x + 1; while mean(y) < 2: y = y + 1 (a data-dependent trip count); out = y + 0.25.
    The WHILE with its cond and body subgraphs is one host layer, equal to LiteRT's reference."""
    def t(name, shape=(1, 8), data=None):
        if data is not None:
            data = np.clip(np.round(np.asarray(data, np.float64) / 0.05) - 10, -128, 127).astype(np.int8)
        return T(name, shape, "int8", 0.05, -10, data=data)

    axis = T("axis", (2,), "int32", data=np.array([0, 1], np.int32))
    x, y, w, out = t("x"), t("y"), t("w"), t("out")
    one, quarter = t("one", data=np.ones((1, 8))), t("quarter", (), data=0.25)
    cv, cm, stop, flag = t("cv"), t("cm", ()), t("stop", (), data=2.0), T("flag", (), "bool")
    cond = Subgraph((Operator("MEAN", (cv, axis), (cm,), _opts(tfl.ReducerOptionsT, keepDims=False)),
                     Operator("LESS", (cm, stop), (flag,), None)), (cv,), (flag,), "cond")
    bv, bw, bone = t("bv"), t("bw"), t("bone", data=np.ones((1, 8)))
    body = Subgraph((Operator("ADD", (bv, bone), (bw,), tfl.AddOptionsT()),), (bv,), (bw,), "body")
    ops = [Operator("ADD", (x, one), (y,), tfl.AddOptionsT()),
           Operator("WHILE", (y,), (w,), _opts(tfl.WhileOptionsT, condSubgraphIndex=1, bodySubgraphIndex=2)),
           Operator("ADD", (w, quarter), (out,), tfl.AddOptionsT())]
    model = build_model(ops, [x], [out], subgraphs=(cond, body))
    path = tmp_path / "while.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    rng = np.random.default_rng(5)
    trips = set()
    for c in (-2.0, -0.5, 0.5, 2.5):
        xq = np.clip(np.round(rng.normal(c, 0.3, (1, 8)) / 0.05) - 10, -128, 127).astype(np.int8)
        want = run_reference(model, [xq])[0]
        np.testing.assert_array_equal(prog.run({"x": xq})["out"], want)
        trips.add(int(round(float(np.mean((want.astype(np.float32) - xq) * 0.05)))))   # 1 + iterations (+0.25)
    assert len(trips) >= 3                      # the trip count follows the data
    assert [h["reason"] for h in prog.profile().host_ops] == [
        "no NPU kernel for TFLite WHILE; charged one iteration of its condition and body (trip count unknown "
        "at compile time)"]
    # one iteration by operator: MEAN 8 + 1 elements (reduce), LESS 1 + 1 (other), the body's ADD
    # 8 + 8 (eltwise); constants are not charged
    cpe = prog.arch.host.cycles_per_element
    assert host_cycles(prog.program, 0, prog.arch)[2] == 9 * cpe["reduce"] + 2 * cpe["other"] + 16 * cpe["eltwise"]


def test_if_is_charged_its_costlier_branch_by_operator(tmp_path):
    """IF(flag, x [1, 32]): then a FULLY_CONNECTED by a 32 x 32 matrix (1024 MACs), else x - 2
    (64 elements): the host segment is charged the costlier branch by the arch's host table,
    the FC's MACs at the "conv" class, not the IF's 65 input and output elements."""
    def t(name, shape=(1, 32), data=None, scale=0.05, zp=-10):
        if data is not None:
            data = np.clip(np.round(np.asarray(data, np.float64) / scale) + zp, -128, 127).astype(np.int8)
        return T(name, shape, "int8", scale, zp, data=data)

    x, m, z, out = t("x"), t("m", (1, 1)), t("z", scale=0.2, zp=0), t("out", scale=0.2, zp=0)
    half, quarter = t("half", (1, 1), data=[[0.5]]), t("quarter", (), data=0.25, scale=0.2, zp=0)
    axis = T("axis", (1,), "int32", data=np.array([1], np.int32))
    cond, flag = T("cond", (1, 1), "bool"), T("flag", (), "bool")
    shape0 = T("shape0", (0,), "int32", data=np.zeros(0, np.int32))
    bx, bz = t("bx"), t("bz", scale=0.2, zp=0)
    w = t("w", (32, 32), np.random.default_rng(1).uniform(-0.5, 0.5, (32, 32)), scale=0.004, zp=0)
    then = Subgraph((Operator("FULLY_CONNECTED", (bx, w), (bz,), tfl.FullyConnectedOptionsT()),), (bx,), (bz,))
    other = Subgraph((Operator("SUB", (bx, t("two", (1, 1), data=[[2.0]])), (bz,), tfl.SubOptionsT(), version=2),),
                     (bx,), (bz,))
    ops = [Operator("MEAN", (x, axis), (m,), _opts(tfl.ReducerOptionsT, keepDims=True)),
           Operator("GREATER", (m, half), (cond,), None),
           Operator("RESHAPE", (cond, shape0), (flag,), None),
           Operator("IF", (flag, x), (z,), _opts(tfl.IfOptionsT, thenSubgraphIndex=1, elseSubgraphIndex=2)),
           Operator("ADD", (z, quarter), (out,), tfl.AddOptionsT())]
    model = build_model(ops, [x], [out], subgraphs=(then, other))
    path = tmp_path / "if_fc.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    cpe = prog.arch.host.cycles_per_element
    assert host_cycles(prog.program, 0, prog.arch)[2] == max(32 * 32 * cpe["conv"], 64 * cpe["eltwise"])
    for c in (-1.0, 1.0):                       # both branches, equal to LiteRT's reference
        xq = np.clip(np.round(np.full((1, 32), c) / 0.05) - 10, -128, 127).astype(np.int8)
        np.testing.assert_array_equal(prog.run({"x": xq})["out"], run_reference(model, [xq])[0])


@pytest.mark.parametrize("index", [0, 3])
def test_if_naming_a_missing_or_the_main_subgraph_is_refused_in_one_line(index, tmp_path):
    flat = tfl.ModelT.InitFromPackedBuf(bytearray(_model("int8")), 0)
    (op,) = [o for o in flat.subgraphs[0].operators if o.builtinOptionsType == tfl.BuiltinOptions.IfOptions]
    op.builtinOptions.thenSubgraphIndex = index
    b = flatbuffers.Builder(1024)
    b.Finish(flat.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "bad.tflite"
    path.write_bytes(bytes(b.Output()))
    with pytest.raises(ModelError, match=f"thenSubgraphIndex names subgraph {index}") as err:
        npu_compile(path, "npu-m")
    assert "\n" not in str(err.value)


def test_empty_concatenation_piece_in_a_loop_body(tmp_path):
    """A called subgraph's CONCATENATION with an empty piece (a Keras RNN's TensorList grown
    from [0, ...] inside a WHILE body) passes validation; the float model's WHILE runs on the
    host (LiteRT) and the whole model agrees with LiteRT: y = x; while mean(y) < 2: y = y + 1
    (the body concatenates y + 1 after an empty [0, 8] list); out = y * 0.5."""
    def t(name, shape=(1, 8), data=None):
        return T(name, shape, "float32", data=None if data is None else np.asarray(data, np.float32))

    axis = T("axis", (2,), "int32", data=np.array([0, 1], np.int32))
    x, w, out, half = t("x"), t("w"), t("out"), t("half", (), data=0.5)
    cv, cm, stop, flag = t("cv"), t("cm", ()), t("stop", (), data=2.0), T("flag", (), "bool")
    cond = Subgraph((Operator("MEAN", (cv, axis), (cm,), _opts(tfl.ReducerOptionsT, keepDims=False)),
                     Operator("LESS", (cm, stop), (flag,), None)), (cv,), (flag,), "cond")
    bv, bs, bw, bone, empty = t("bv"), t("bs"), t("bw"), t("bone", data=np.ones((1, 8))), t("empty", (0, 8), data=np.zeros((0, 8)))
    body = Subgraph((Operator("ADD", (bv, bone), (bs,), tfl.AddOptionsT()),
                     Operator("CONCATENATION", (empty, bs), (bw,), _opts(tfl.ConcatenationOptionsT, axis=0))),
                    (bv,), (bw,), "body")
    ops = [Operator("WHILE", (x,), (w,), _opts(tfl.WhileOptionsT, condSubgraphIndex=1, bodySubgraphIndex=2)),
           Operator("MUL", (w, half), (out,), tfl.MulOptionsT())]
    model = build_model(ops, [x], [out], subgraphs=(cond, body))
    path = tmp_path / "while_list.tflite"
    path.write_bytes(model)
    rng = np.random.default_rng(6)
    xs = rng.normal(0.0, 1.5, (8, 1, 8)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": xs}, sqnr=False)
    assert [h["reason"] for h in prog.profile().host_ops][0].startswith("no NPU kernel for TFLite WHILE")
    for x in xs[:3]:
        want = run_default(model, [x])[0]
        np.testing.assert_allclose(prog.run({"x": x})["out"], want, atol=4 * float(prog.program.outputs[0].scale))

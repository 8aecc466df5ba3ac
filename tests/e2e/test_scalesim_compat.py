"""The documented SCALE-Sim compat command (docs/peers.md, "Reproducing SCALE-Sim from the
command line") as a user runs it:

    npukit profile NET.onnx --arch examples/arch/scalesim_32x32.toml \
        --option timed_candidates=1 --dataflow ws|os --json prof.json

Each conv / FC layer's `mxu_cycles` must equal SCALE-Sim's compute cycles, written out here
from SCALE-Sim 3.0's demand matrices (compute/systolic_compute_{ws,os}.py): per fold, ws
streams T = E output pixels behind R rows of weight loading, skewed over R - 1 + C - 1
cycles (2R + C + T - 2), over ceil(Win / R) x ceil(K / C) folds; os streams T = Win
operands through R + C - 2 cycles of skew, over ceil(E / R) x ceil(K / C) folds; the count
ends one short of folds x per-fold (cycles are numbered from 0).
"""
from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from npukit.testing.fixtures import run_cli

ROOT = Path(__file__).resolve().parents[2]
COMPAT = ROOT / "examples" / "arch" / "scalesim_32x32.toml"
# (name, cin, cout, kernel, stride, pad) on a 20x20 input: folds in both array dimensions
CONVS = [("c1", 3, 40, 3, 1, 1), ("c2", 40, 70, 3, 2, 1), ("c3", 70, 33, 1, 1, 0)]
CLASSES = 10


def scalesim_compute_cycles(e: int, k: int, win: int, rows: int, cols: int, dataflow: str) -> int:
    if dataflow == "ws":
        return math.ceil(win / rows) * math.ceil(k / cols) * (2 * rows + cols + e - 2) - 1
    return math.ceil(e / rows) * math.ceil(k / cols) * (win + rows + cols - 2) - 1


def _net(path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for name, cin, cout, kernel, stride, pad in CONVS:
        inits += [numpy_helper.from_array((rng.standard_normal((cout, cin, kernel, kernel)) * 0.2)
                                          .astype(np.float32), f"{name}_w"),
                  numpy_helper.from_array(rng.standard_normal(cout).astype(np.float32) * 0.1, f"{name}_b")]
        nodes += [helper.make_node("Conv", [x, f"{name}_w", f"{name}_b"], [name], name=name,
                                   kernel_shape=[kernel] * 2, strides=[stride] * 2, pads=[pad] * 4),
                  helper.make_node("Relu", [name], [f"{name}_r"])]
        x = f"{name}_r"
    inits += [numpy_helper.from_array(rng.standard_normal((CLASSES, CONVS[-1][2])).astype(np.float32) * 0.2, "fc_w"),
              numpy_helper.from_array(np.zeros(CLASSES, np.float32), "fc_b")]
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"]), helper.make_node("Flatten", ["gap"], ["flat"]),
              helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["y"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 20, 20])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), str(path))


def _layers(path: Path) -> dict[str, dict[str, int]]:
    """Per MXU layer: output height E_h, pixels E, filters K, input channels and Win, from ONNX shapes."""
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in m.graph.value_info}
    inits = {i.name: list(i.dims) for i in m.graph.initializer}
    out = {}
    for node in m.graph.node:
        if node.op_type == "Conv":
            k, c, kh, kw = inits[node.input[1]]
            _, _, eh, ew = shapes[node.output[0]]
            out[node.name] = {"eh": eh, "e": eh * ew, "k": k, "c": c, "win": kh * kw * c}
        elif node.op_type == "Gemm":
            k, c = inits[node.input[1]]
            out[node.name] = {"eh": 1, "e": 1, "k": k, "c": c, "win": c}
    return out


@pytest.mark.parametrize("dataflow", ["ws", "os"])
def test_compat_command_gives_scalesim_compute_cycles(tmp_path, dataflow):
    model = tmp_path / "net.onnx"
    _net(model)
    mxu = tomllib.loads(COMPAT.read_text())["mxu"]
    rows, cols = mxu["rows"], mxu["cols"]
    assert mxu["fold_overlap"] is False
    r = run_cli("profile", model, "--arch", COMPAT.relative_to(ROOT), "--option", "timed_candidates=1",
                "--dataflow", dataflow, "--json", tmp_path / "prof.json", cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    got = {L["name"]: L for L in json.loads((tmp_path / "prof.json").read_text())["layers"]}
    want = _layers(model)
    assert set(want) <= set(got)
    for name, L in want.items():
        t = got[name]["tiling"]
        # one tile over the whole layer, as SCALE-Sim times it
        assert (t["th"], t["tk"], t["tc"], t["dataflow"]) == (L["eh"], L["k"], L["c"], dataflow), name
        assert got[name]["mxu_cycles"] == scalesim_compute_cycles(L["e"], L["k"], L["win"], rows, cols, dataflow), name


def test_hand_worked_folds():
    # c2 above: 10x10 out (E = 100), Win = 9 * 40 = 360, K = 70 on 32x32
    # ws: 12 x 3 folds of 64 + 32 + 100 - 2 = 194 -> 36 * 194 - 1
    assert scalesim_compute_cycles(100, 70, 360, 32, 32, "ws") == 6983
    # os: 4 x 3 folds of 360 + 32 + 32 - 2 = 422 -> 12 * 422 - 1
    assert scalesim_compute_cycles(100, 70, 360, 32, 32, "os") == 5063


def test_zoo_command_writes_a_model(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "r8.onnx"
    r = subprocess.run([sys.executable, "-m", "npukit.models.zoo", "resnet8", "--size", "16", "-o", out],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    assert [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim] == [1, 3, 16, 16]
    bad = subprocess.run([sys.executable, "-m", "npukit.models.zoo", "resnet8", "--size", "0", "-o", out],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "size" in bad.stderr

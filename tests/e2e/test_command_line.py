"""The command line as a user drives it: the README's commands, and one-line errors on bad input."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from npukit.testing.fixtures import run_cli

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"
PROFILE_FIELDS = {"schema_version", "total_cycles", "latency_ms", "macs", "dram_bytes", "energy_uj",
                  "roofline_cycles", "utilisation", "sram_peak_bytes", "host_ops", "layers"}
LAYER_FIELDS = {"name", "op", "nodes", "macs", "cycles", "mxu_cycles", "dram_bytes", "roofline_cycles", "bound"}


def npukit(*args, cwd=None):
    return run_cli(*args, cwd=cwd, timeout=300)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    np.savez(d / "calib.npz", x=rng.random((16, 1, 1, 8, 8), dtype=np.float32))
    np.save(d / "x.npy", rng.random((1, 1, 8, 8), dtype=np.float32))
    r = npukit("compile", DIGITS, "--arch", "npu-s", "--input-shape", "x=1,1,8,8", "--calib", d / "calib.npz",
               "--calib-method", "percentile", "-o", d / "m.npub", "--json", d / "sqnr.json")
    assert r.returncode == 0, r.stderr
    return d, r


def test_compile_prints_sqnr_worst_first(compiled):
    d, r = compiled
    assert "SQNR" in r.stdout
    rows = json.loads((d / "sqnr.json").read_text())["sqnr"]
    assert len(rows) >= 3 and [x["sqnr_db"] for x in rows] == sorted(x["sqnr_db"] for x in rows)


def test_run_equals_python_api(compiled):
    import npukit as api
    d, _ = compiled
    r = npukit("run", d / "m.npub", "--input", d / "x.npy", "-o", d / "out.npz")
    assert r.returncode == 0, r.stderr
    got = np.load(d / "out.npz")
    want = api.load(d / "m.npub").run({"x": np.load(d / "x.npy")})
    assert set(got.files) == set(want) and all(np.array_equal(got[k], want[k]) for k in want)
    named = npukit("run", d / "m.npub", "--input", f"x={d / 'x.npy'}", "-o", d / "out2.npz")
    assert named.returncode == 0 and np.array_equal(np.load(d / "out2.npz")[got.files[0]], got[got.files[0]])


def test_profile_json_schema(compiled):
    d, _ = compiled
    r = npukit("profile", d / "m.npub", "--json", d / "p.json")
    assert r.returncode == 0, r.stderr
    p = json.loads((d / "p.json").read_text())
    assert PROFILE_FIELDS <= set(p) and p["layers"]
    assert all(LAYER_FIELDS <= set(layer) for layer in p["layers"])
    assert sum(layer["cycles"] for layer in p["layers"]) == p["total_cycles"]
    assert p["latency_ms"] == pytest.approx(p["total_cycles"] / (p["clock_mhz"] * 1e3))
    assert p["macs"] == sum(layer["macs"] for layer in p["layers"]) == 25600   # 8x8 digits CNN
    assert {layer["bound"] for layer in p["layers"]} <= {"compute", "memory", "vpu", "overhead", "host"}


def test_profile_from_model_and_disasm(compiled):
    d, _ = compiled
    r = npukit("profile", DIGITS, "--arch", "npu-l", "--input-shape", "x=1,1,8,8")
    assert r.returncode == 0 and "RANDOM" in r.stderr and "total" in r.stdout
    dis = npukit("disasm", d / "m.npub")
    assert dis.returncode == 0 and "CONV" in dis.stdout and "REQUANT" in dis.stdout


def test_archs():
    r = npukit("archs")
    assert r.returncode == 0 and all(p in r.stdout for p in ("npu-s", "npu-m", "npu-l"))
    show = npukit("archs", "--show", "npu-m")
    assert show.returncode == 0 and "rows = 16" in show.stdout


def _bad_models(d: Path) -> dict[str, Path]:
    (d / "garbage.onnx").write_bytes(b"\x08\x07not a model at all" * 10)
    node = helper.make_node("NonMaxSuppression", ["x", "s"], ["y"])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4]),
                                        helper.make_tensor_value_info("s", TensorProto.FLOAT, [1, 1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.INT64, None)])
    onnx.save(helper.make_model(g), d / "unsupported.onnx")
    (d / "impossible.toml").write_text((ROOT / "npukit/arch/presets/npu-s.toml").read_text()
                                       .replace("rows = 8", "rows = 0"))
    return {"garbage": d / "garbage.onnx", "unsupported": d / "unsupported.onnx",
            "arch": d / "impossible.toml"}


def test_bad_input_gives_one_line_error(compiled):
    d, _ = compiled
    bad = _bad_models(d)
    data = (d / "m.npub").read_bytes()
    (d / "trunc.npub").write_bytes(data[: len(data) // 2])
    flipped = bytearray(data)
    flipped[len(data) // 3] ^= 0x5A
    (d / "flip.npub").write_bytes(bytes(flipped))
    np.save(d / "wrong.npy", np.zeros((1, 1, 9, 9), np.float32))
    cases = {
        "malformed onnx": ("compile", bad["garbage"], "-o", d / "x.npub"),
        "unsupported op": ("compile", bad["unsupported"], "-o", d / "x.npub"),
        "impossible arch": ("compile", DIGITS, "--arch", bad["arch"], "--input-shape", "x=1,1,8,8", "-o", d / "x.npub"),
        "unknown preset": ("profile", DIGITS, "--arch", "npu-xl"),
        "truncated binary": ("run", d / "trunc.npub", "--input", d / "x.npy", "-o", d / "o.npz"),
        "corrupt binary": ("disasm", d / "flip.npub"),
        "wrong input shape": ("run", d / "m.npub", "--input", d / "wrong.npy", "-o", d / "o.npz"),
        "missing file": ("run", d / "none.npub", "--input", d / "x.npy", "-o", d / "o.npz"),
        "bad shape spec": ("compile", DIGITS, "--input-shape", "x=1,a", "-o", d / "x.npub"),
    }
    for what, args in cases.items():
        r = npukit(*args)
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert r.returncode != 0, what
        assert "Traceback" not in r.stderr, what
        assert len(lines) == 1 and lines[0].startswith("error:"), (what, r.stderr)
    assert "NonMaxSuppression" in npukit(*cases["unsupported op"]).stderr
    assert "rows" in npukit(*cases["impossible arch"]).stderr


WITHOUT_LITERT = ("import sys, runpy; sys.modules['ai_edge_litert'] = None; sys.argv = ['npukit', *sys.argv[1:]]; "
                  "runpy.run_module('npukit.cli', run_name='__main__')")


def test_core_install_compiles_onnx_without_litert(tmp_path):
    """LiteRT is an extra: without it an ONNX model compiles, runs and profiles, and a TFLite
    model gets a one-line error saying what to install."""
    def cli(*args):
        return subprocess.run([sys.executable, "-c", WITHOUT_LITERT, *map(str, args)], capture_output=True,
                              text=True, timeout=300)
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    assert cli("compile", DIGITS, "--input-shape", "x=1,1,8,8", "-o", tmp_path / "m.npub").returncode == 0
    assert cli("run", tmp_path / "m.npub", "--input", tmp_path / "x.npy", "-o", tmp_path / "o.npz").returncode == 0
    assert cli("profile", tmp_path / "m.npub").returncode == 0
    (tmp_path / "m.tflite").write_bytes(b"\0" * 64)
    r = cli("compile", tmp_path / "m.tflite", "-o", tmp_path / "t.npub")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "npukit[tflite]" in r.stderr, r.stderr


@pytest.mark.parametrize("args", [("compile",), ("no-such-command",), ("compile", DIGITS, "--dataflow")])
def test_usage_mistakes_are_one_line_exit_2(args):
    r = npukit(*args)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and r.stderr.strip().count("\n") == 0, r.stderr


def test_host_fallbacks_listed_and_host_never_refuses(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("CumSum", ["r", "ax"], ["c"], name="cum"),
             helper.make_node("Hardmax", ["c"], ["e"], name="hmax"), helper.make_node("Relu", ["e"], ["y"])]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
                          [onnx.numpy_helper.from_array(np.array(1, np.int64), "ax")])
    path = tmp_path / "host.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    r = npukit("compile", path, "-o", tmp_path / "m.npub")
    assert r.returncode == 0, r.stderr
    listed = r.stdout.split("host fallbacks: 2\n")[1].splitlines()[:2]
    assert listed[0] == "  cum (host_float): no NPU kernel for ONNX CumSum"
    assert listed[1] == "  hmax (host_float): no NPU kernel for ONNX Hardmax"
    for cmd in (("compile", path, "-o", tmp_path / "n.npub", "--host", "never"), ("profile", path, "--host", "never")):
        r = npukit(*cmd)
        assert r.returncode == 2 and r.stderr.strip().count("\n") == 0, r.stderr
        assert "CumSum (node 'cum')" in r.stderr and "Hardmax (node 'hmax')" in r.stderr
    r = npukit("compile", path, "-o", tmp_path / "n.npub", "--host", "maybe")
    assert r.returncode == 2 and r.stderr.startswith("error: Invalid value for '--host': 'maybe' is not one of "
                                                     "'auto', 'never'"), r.stderr

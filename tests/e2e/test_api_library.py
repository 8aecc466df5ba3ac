"""The Python API as a library: `run` checks its feeds and says which one is wrong, `repr`
summarises the model, `save`/`load` keep the noise report, and the main job (compile, run,
profile, report, info) needs none of the extras."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.measure import LayerSqnr

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"
INT8_CONV = ROOT / "tests" / "data" / "tflite_ops" / "conv2d_3x3_same.tflite"   # int8 in, int8 out


@pytest.fixture(scope="module")
def digits():
    calib = np.random.default_rng(0).random((8, 1, 1, 8, 8), dtype=np.float32)
    return npukit.compile(DIGITS, "npu-s", {"x": (1, 1, 8, 8)}, calibration={"x": calib})


@pytest.fixture(scope="module")
def int8_conv():
    return npukit.compile(INT8_CONV, "npu-s")


def test_repr_summarises_the_model(digits, int8_conv):
    text = repr(digits)
    p = digits.profile()
    assert "x float32[1, 1, 8, 8]" in text and "logits float32[1, 10]" in text
    assert f"arch npu-s: {len(digits.program.layers)} layers" in text and f"{p.total_cycles} cycles" in text
    assert "digits_cnn.onnx" in text
    (name, (shape, _)), = int8_conv.input_specs.items()
    assert f"{name} int8{list(shape)}" in repr(int8_conv)


def test_save_and_load_keep_the_noise_report(digits, tmp_path):
    assert digits.sqnr and all(np.isfinite(s.sqnr_db) for s in digits.sqnr)
    digits.save(tmp_path / "m.npub")
    loaded = npukit.load(tmp_path / "m.npub")
    assert loaded.sqnr == digits.sqnr
    assert [s.sqnr_db for s in loaded.sqnr] == [s.sqnr_db for s in digits.sqnr]


def test_save_and_load_keep_infinite_sqnr(digits):
    """An exact layer (+inf dB) and noise on an all-zero float output (-inf dB) survive JSON."""
    report = [LayerSqnr("a", "add", float("-inf")), LayerSqnr("b", "conv2d", 12.25),
              LayerSqnr("c", "host_float", float("inf"))]
    model = npukit.CompiledModel(digits.program, digits.arch, sqnr=report)
    assert npukit.loads(model.to_bytes()).sqnr == report


def test_main_job_imports_no_extra(tmp_path):
    """compile, run, profile, report and info, from Python and the command line, import none of
    the packages the extras bring (scipy is left out: numba imports it when it is installed)."""
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import npukit
        from npukit import cli
        d = {str(tmp_path)!r}
        prog = npukit.compile({str(DIGITS)!r}, input_shapes={{"x": (1, 1, 8, 8)}},
                              calibration={{"x": np.random.default_rng(0).random((4, 1, 1, 8, 8), np.float32)}})
        prog.run({{"x": np.zeros((1, 1, 8, 8), np.float32)}})
        str(prog.profile()); repr(prog)
        prog.report(d + "/r.html"); prog.save_trace(d + "/t.json"); prog.save_csv(d + "/l.csv")
        prog.save(d + "/m.npub"); npukit.load(d + "/m.npub")
        str(npukit.info({str(DIGITS)!r}, {{"x": (1, 1, 8, 8)}}))
        np.save(d + "/x.npy", np.zeros((1, 1, 8, 8), np.float32))
        for argv in (["compile", {str(DIGITS)!r}, "--input-shape", "x=1,1,8,8", "-o", d + "/c.npub"],
                     ["run", d + "/c.npub", "--input", d + "/x.npy", "-o", d + "/o.npz"],
                     ["profile", d + "/c.npub", "--csv", d + "/p.csv"], ["report", d + "/c.npub", "-o", d + "/c.html"],
                     ["info", {str(DIGITS)!r}, "--input-shape", "x=1,1,8,8"]):
            sys.argv = ["npukit", *argv]
            try:
                cli.main()
            except SystemExit as e:
                assert not e.code, (argv, e.code)
        extras = {{"plotly", "ray", "optuna", "sklearn", "skimage", "matplotlib", "tokenizers",
                  "pymicro_features", "ai_edge_litert", "pytest", "hypothesis", "PIL"}}
        print(sorted(extras & {{m.split(".")[0] for m in sys.modules}}))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"


def _requirement_names(reqs: list[str]) -> set[str]:
    return {re.split(r"[<>=\[ ;]", r, maxsplit=1)[0].lower().replace("_", "-") for r in reqs}


def test_examples_extra_brings_what_the_examples_import():
    """Every third-party module imported by examples/ and npukit.models is installed by the
    core dependencies or the `examples` extra; `test` includes every other extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    core = _requirement_names(project["dependencies"])
    examples = _requirement_names(extras["examples"])
    test_includes = {name for r in extras["test"] for name in
                     re.findall(r"\w+", r.partition("[")[2].partition("]")[0]) if r.startswith("npukit[")}
    assert test_includes == set(extras) - {"test"}
    dists = packages_distributions()
    sources = [*ROOT.glob("examples/**/*.py"), *ROOT.glob("npukit/models/*.py")]
    modules = {m for f in sources for m in re.findall(r"^\s*(?:import|from) (\w+)", f.read_text(), re.M)}
    needed = {d.lower().replace("_", "-") for m in modules for d in dists.get(m, ())} - {"npukit"}
    training = {"torch"}                                            # train_*.py re-train the shipped models
    assert needed - training - core - examples == set()

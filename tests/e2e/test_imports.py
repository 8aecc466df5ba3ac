"""Heavy dependencies load only where used: each case runs in a fresh interpreter and checks
which of them are in sys.modules afterwards (module absence, not timings)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TFLITE = "tests/data/mlperf_tiny/ds_cnn.tflite"
ONNX = "examples/digits/digits_cnn.onnx"
HEAVY = ("numpy", "onnx", "onnxruntime", "numba", "ray", "plotly", "optuna", "ai_edge_litert")
# What compiling a pre-quantised model has no use for: the functional simulator (and its
# exact int8 products), the float-model stages (optimisation passes, equalisation,
# calibration runs, bias correction, the int16 choice, the noise report and its reference
# runs, the accuracy summary, the scales kept for other shapes)
# and the BLAS thread control they use. `run` loads the simulator.
NOT_COMPILING = ("npukit.sim.functional", "npukit.sim.gemm_int8", "npukit.sim.reference", "npukit.kernels.float_exec",
                 "npukit.opt.pipeline", "npukit.opt.equalize", "npukit.quant.bias_correction", "npukit.quant.wide",
                 "npukit.quant.precision", "npukit.quant.scales", "npukit.measure", "threadpoolctl")
# What a pre-quantised CNN has no use for either: the recurrent, int16-magnitude and host
# operators' kernels, the host-segment records and the integer reference executor.
NOT_FOR_A_CNN = ("npukit.kernels.kernels_lstm", "npukit.kernels.kernels_gru", "npukit.kernels.kernels_wide",
                 "npukit.kernels.host_float", "npukit.kernels.host_tflite", "npukit.kernels.qexec",
                 "npukit.quant.records", "npukit.quant.recurrent_params", "npukit.frontend.tflite_host")
MARK = "LOADED-MODULES "


def loaded(body: str, watch: tuple[str, ...] = HEAVY) -> set[str]:
    """The `watch` modules imported by running `body` in a fresh interpreter from the repo root."""
    code = f"import json, sys\n{body}\nprint({MARK!r} + json.dumps([m for m in {watch!r} if m in sys.modules]))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith(MARK))
    return set(json.loads(line[len(MARK):]))


def cli(*args: str, code: int = 0) -> str:
    """`npukit ARGS` run in-process by the probe (its exit caught and checked to be `code`)."""
    return (f"from npukit.cli import main\nsys.argv = ['npukit', *{list(args)!r}]\n"
            f"try:\n    main()\nexcept SystemExit as e:\n    assert (e.code or 0) == {code}, e.code")


def test_import_npukit_loads_nothing_heavy():
    assert loaded("import npukit; assert npukit.__version__") == set()


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("archs",), ("compile", "--help")])
def test_cli_help_version_and_archs_load_nothing_heavy(args):
    assert loaded(cli(*args)) == set()


# What the help's rich layout loads (typer.rich_utils: rich's console, markdown, pygments) and
# what validating an arch loads (the pydantic schema): `npukit archs` reads the preset TOMLs.
RICH = ("typer.rich_utils", "rich", "rich.markdown", "pygments", "markdown_it")
ARCH_SCHEMA = ("npukit.arch.config", "npukit.arch.loader")


@pytest.mark.parametrize("args, code", [(("--help",), 0), (("archs",), 0), (("compile", "--help"), 0), ((), 2)])
def test_cli_help_and_archs_load_no_rich_layout_and_no_arch_schema(args, code):
    assert loaded(cli(*args, code=code), RICH + ARCH_SCHEMA) == set()


def test_archs_show_validates_the_preset():
    assert loaded(cli("archs", "--show", "npu-m"), ARCH_SCHEMA) == set(ARCH_SCHEMA)


def test_tflite_compile_profile_run_without_onnx():
    body = (f"import numpy as np, npukit\np = npukit.compile({TFLITE!r}, 'u55-256')\np.profile()\n"
            "p.run({n: np.zeros(s, d) for n, (s, d) in p.input_specs.items()})")
    modules = loaded(body, HEAVY + NOT_COMPILING)
    assert "npukit.sim.functional" in modules       # the probe sees what `run` loads
    # the simulator's exact int8 products run in onnxruntime (sim.gemm_int8), not the onnx package
    assert not modules & {"onnx", "ray", "plotly", "optuna"}, modules
    assert "ai_edge_litert" in modules       # the probe did import the model


def test_tflite_compile_and_profile_load_no_onnxruntime():
    body = f"import npukit\np = npukit.compile({TFLITE!r}, 'u55-256')\np.profile()"
    modules = loaded(body, HEAVY + NOT_COMPILING)
    assert not modules & {"onnx", "onnxruntime", "numba", "ray", "plotly", "optuna", *NOT_COMPILING}, modules


def test_tflite_cli_compile_loads_no_onnx(tmp_path):
    modules = loaded(cli("compile", TFLITE, "--arch", "u55-256", "-o", str(tmp_path / "m.npub")),
                     HEAVY + NOT_COMPILING + NOT_FOR_A_CNN)
    assert not modules & {"onnx", "onnxruntime", "numba", "ray", "plotly", "optuna", *NOT_COMPILING,
                          *NOT_FOR_A_CNN}, modules
    assert (tmp_path / "m.npub").is_file()


def test_the_cnn_watch_list_names_modules_that_exist():
    # (the test above would pass on a misspelt name)
    assert loaded("import " + ", ".join(NOT_FOR_A_CNN), NOT_FOR_A_CNN) == set(NOT_FOR_A_CNN)


def test_onnx_compile_loads_no_litert():
    body = (f"import warnings, npukit\nwarnings.simplefilter('ignore')\n"
            f"npukit.compile({ONNX!r}, 'u55-256', {{'x': (1, 1, 8, 8)}}).profile()")
    modules = loaded(body)
    assert not modules & {"ai_edge_litert", "ray", "plotly", "optuna"}, modules
    assert "onnx" in modules


def test_onnx_compile_without_noise_report_loads_no_reference_executor():
    # the integer reference runs only for the noise report and the int16 choice; the
    # recurrent kernels only for a model with an LSTM or GRU
    body = (f"import warnings, npukit\nwarnings.simplefilter('ignore')\n"
            f"npukit.compile({ONNX!r}, 'u55-256', {{'x': (1, 1, 8, 8)}}, sqnr=False).profile()")
    watch = ("npukit.kernels.qexec", "npukit.kernels.kernels_gru", "npukit.kernels.float_exec")
    assert loaded(body, watch) == {"npukit.kernels.float_exec"}     # (the probe did calibrate)


def test_stored_matmul_integer_model_is_what_onnx_builds():
    from onnx import TensorProto as T
    from onnx import helper

    from npukit.sim.gemm_int8 import MATMUL_INTEGER_MODEL
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zp"], ["Y"])], "mxu",
        [helper.make_tensor_value_info("A", T.UINT8, ["M", "K"]),
         helper.make_tensor_value_info("B", T.INT8, ["K", "N"]),
         helper.make_tensor_value_info("a_zp", T.UINT8, [])],
        [helper.make_tensor_value_info("Y", T.INT32, ["M", "N"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    assert model.SerializeToString() == MATMUL_INTEGER_MODEL


def test_cli_compile_freezes_the_imports_and_leaves_the_collector_on(tmp_path):
    body = cli("compile", TFLITE, "--arch", "u55-256", "-o", str(tmp_path / "m.npub"))
    frozen = "import gc\nfrozen = gc.get_freeze_count()\n"
    loaded(frozen + body + "\nassert gc.isenabled() and gc.get_freeze_count() > frozen + 10**4, gc.get_freeze_count()")


def test_cli_compile_parses_and_imports_with_the_collector_paused(tmp_path):
    # gc.callbacks see every collection: none walks the import-time objects (numpy, pydantic's
    # adapters, the arch schema, the compiler) from main() until they are frozen
    body = cli("compile", TFLITE, "--arch", "u55-256", "-o", str(tmp_path / "m.npub"))
    probe = ("import gc\nimport npukit.cli\nimport npukit.cli_model as cm\nruns, seen = [], []\n"
             "gc.callbacks.append(lambda phase, info: runs.append(gc.get_freeze_count()))\n"
             "orig = cm._frozen_imports\n"
             "def frozen(model):\n    orig(model)\n    seen.append(len(runs))\ncm._frozen_imports = frozen\n")
    loaded(probe + body + "\nassert seen and runs and 0 not in runs and gc.isenabled(), (seen, runs[:8])")


@pytest.mark.parametrize("args,code", [(("--help",), 0), (("archs",), 0), (("compile", "--bogus"), 2)])
def test_cli_leaves_the_collector_on(args, code):
    loaded("import gc\n" + cli(*args, code=code) + "\nassert gc.isenabled()")


def test_the_command_starts_blas_on_one_thread():
    # set before numpy loads (npukit computes on one core: npukit.threads); threadpoolctl reads
    # the thread count OpenBLAS started with
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    code = (cli("archs") + "\nimport numpy, threadpoolctl\n"
            "print(max(i['num_threads'] for i in threadpoolctl.threadpool_info() if i['internal_api'] == 'openblas'))")
    r = subprocess.run([sys.executable, "-c", "import sys\n" + code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "1"


def test_the_commands_process_defaults_leave_the_environments_settings():
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "3", "PYDANTIC_DISABLE_PLUGINS": "some_plugin"}
    code = cli("archs") + "\nimport os\nprint(os.environ['OPENBLAS_NUM_THREADS'], os.environ['PYDANTIC_DISABLE_PLUGINS'])"
    r = subprocess.run([sys.executable, "-c", "import sys\n" + code], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "3 some_plugin"

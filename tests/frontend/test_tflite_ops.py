"""Every TFLite operator the frontend maps, compiled to the NPU and run on the simulator, equals
LiteRT's reference kernels (BUILTIN_REF) element for element over random models and inputs."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from npukit.api import compile as npu_compile
from npukit.testing.tflite_builder import run_reference
from tflite_testutil import CASES

DATA = Path(__file__).resolve().parents[1] / "data" / "tflite_ops"
SEEDS = (1, 2)
INPUTS_PER_MODEL = 4


def _check(model: bytes, example: list[np.ndarray], path: Path, seed: int) -> None:
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    rng = np.random.default_rng(seed)
    for k in range(INPUTS_PER_MODEL):
        xs = example if k == 0 else [rng.integers(-128, 128, size=x.shape).astype(x.dtype) for x in example]
        want = run_reference(model, xs)
        got = prog.run(dict(zip(prog.input_names, xs)))
        for name, w in zip(prog.output_names, want):
            assert got[name].dtype == w.dtype and got[name].shape == w.shape
            np.testing.assert_array_equal(got[name], w, err_msg=f"{path.name} output {name} input {k}")


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", SEEDS)
def test_single_op_matches_litert_reference(case, seed, tmp_path):
    model, example = CASES[case](seed)
    _check(model, example, tmp_path / f"{case}.tflite", seed)


@pytest.mark.parametrize("path", sorted(DATA.glob("*.tflite")), ids=lambda p: p.stem)
def test_committed_single_op_models_match_litert_reference(path, tmp_path):
    from npukit.testing.single_op import read_single_op
    op = read_single_op(path.read_bytes())
    rng = np.random.default_rng(0)
    example = [rng.integers(-128, 128, size=t.shape).astype(t.dtype) for t in op.inputs
               if t is not None and t.data is None]
    _check(path.read_bytes(), example, tmp_path / path.name, 0)


# Operators the issue requires on the NPU itself (not as host fallbacks); the test above
# checks their numbers, this one where they ran.
NPU_CASES = sorted(CASES)


@pytest.mark.parametrize("case", NPU_CASES)
def test_operator_runs_on_the_npu(case, tmp_path):
    model, _ = CASES[case](1)
    path = tmp_path / f"{case}.tflite"
    path.write_bytes(model)
    profile = npu_compile(path, "npu-m").profile()
    assert profile.host_ops == [], profile.host_ops


@pytest.mark.parametrize("shape,scale", [((2, 10), 2.0 ** -30), ((3, 512), 1e-12), ((1, 4, 33), 2.0 ** -26)])
def test_softmax_below_reference_scale_follows_litert_default(shape, scale, tmp_path):
    """An input scale LiteRT's reference SoftmaxPrepare aborts on compiles, runs on the NPU
    and equals LiteRT's default kernel."""
    from ai_edge_litert import schema_py_generated as tfl

    from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_default
    options = tfl.SoftmaxOptionsT()
    options.beta = 1.0
    model = build_single_op("SOFTMAX", [TensorSpec("x", shape, "int8", scale, 7)],
                            [TensorSpec("y", shape, "int8", 1 / 256, -128)], options)
    path = tmp_path / "softmax.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    assert prog.profile().host_ops == []
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.integers(-128, 128, size=shape).astype(np.int8)
        np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})["y"], run_default(model, [x])[0])

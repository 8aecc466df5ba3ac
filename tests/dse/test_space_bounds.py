"""Space files are bounded before any sweep: the sweep's size (counted, never expanded), each
swept arch value against the arch's own limits, and ranges that are empty, NaN or infinite."""
from __future__ import annotations

import time

import pytest

from npukit import limits as L
from npukit.dse.space import parse_space
from npukit.dse.strategies import make_strategy
from npukit.errors import InputError
from npukit.testing.fixtures import run_cli

ONE_MODEL = {"models": [{"path": "a.onnx"}]}


def _refused(tmp_path, data: dict, *words: str) -> str:
    t = time.monotonic()
    with pytest.raises(InputError) as e:
        parse_space(data, tmp_path)
    msg = str(e.value)
    assert time.monotonic() - t < 5, "refused only after expanding the sweep"
    assert "\n" not in msg and len(msg) < 250, msg
    for w in words:
        assert w in msg, msg
    return msg


@pytest.mark.parametrize("strategy", ["random", "optuna"])
def test_samples_beyond_the_sweep_limit(tmp_path, strategy):
    _refused(tmp_path, {"strategy": {"kind": strategy, "samples": 10 ** 9}, **ONE_MODEL},
             "strategy.samples", L.SWEEP_POINTS.name)


def test_samples_as_a_float_is_refused(tmp_path):
    _refused(tmp_path, {"strategy": {"kind": "random", "samples": 1e9}, **ONE_MODEL}, "strategy.samples")


def test_samples_times_models_beyond_the_limit(tmp_path):
    models = [{"path": f"m{i}.onnx"} for i in range(3)]
    _refused(tmp_path, {"strategy": {"kind": "random", "samples": L.SWEEP_POINTS.value // 2}, "models": models},
             "3 model(s)", L.SWEEP_POINTS.name)


def test_fine_grid_over_the_clock_is_counted_not_expanded(tmp_path):
    data = {"arch": {"clock_mhz": {"min": 100, "max": 1000, "step": 1e-9}}, **ONE_MODEL}
    _refused(tmp_path, data, "arch.clock_mhz", L.SWEEP_POINTS.name)


def test_tiny_step_that_overflows_the_count(tmp_path):
    data = {"arch": {"clock_mhz": {"min": 100, "max": 1000, "step": 5e-324}}, **ONE_MODEL}
    _refused(tmp_path, data, "arch.clock_mhz", L.SWEEP_POINTS.name)


def test_grid_product_beyond_the_limit(tmp_path):
    data = {"arch": {"mxu.rows": {"min": 1, "max": 1000, "step": 1}, "mxu.cols": {"min": 1, "max": 1000, "step": 1},
                     "vpu.lanes": [8, 16]}, **ONE_MODEL}
    _refused(tmp_path, data, "the grid", "2,000,000", L.SWEEP_POINTS.name)


def test_a_fine_random_range_draws_without_building_its_grid(tmp_path):
    data = {"strategy": {"kind": "random", "samples": 5},
            "arch": {"clock_mhz": {"min": 100.0, "max": 1000.0, "step": 0.001}}, **ONE_MODEL}
    cands = make_strategy(parse_space(data, tmp_path)).ask()
    assert len(cands) == 5 and all(100 <= dict(c.values)["arch:clock_mhz"] <= 1000 for c in cands)


@pytest.mark.parametrize("key, domain, limit", [
    ("sram.abuf_kib", [64, 2 ** 40], L.SRAM_KIB),
    ("clock_mhz", {"min": 100, "max": 2 ** 31, "step": 2 ** 29}, L.CLOCK_MHZ),
    ("clock_mhz", {"min": 1e-6, "max": 100.0, "log": True}, L.MIN_CLOCK_MHZ),
    ("regions.dram.bandwidth_gbps", [1e-9], L.MIN_BANDWIDTH_GBPS),
    ("mxu.rows", {"min": 8, "max": 8192}, L.ARRAY_DIM),
])
def test_swept_value_beyond_an_arch_limit_is_refused_before_the_sweep(tmp_path, key, domain, limit):
    _refused(tmp_path, {"strategy": {"kind": "random", "samples": 4}, "arch": {key: domain}, **ONE_MODEL},
             f"arch.{key}", limit.name)


@pytest.mark.parametrize("key, domain, problem", [
    ("sram.abuf_kib", {"min": 64, "max": 128, "step": 0.5}, "valid integer"),   # a float grid on an int key
    ("mxu.rows", [8.0], "valid integer"),
    ("mxu.rows", [True], "valid integer"),
    ("clock_mhz", ["fast"], "valid number"),
])
def test_swept_value_of_the_wrong_type_is_refused(tmp_path, key, domain, problem):
    _refused(tmp_path, {"arch": {key: domain}, **ONE_MODEL}, f"arch.{key}", problem)


@pytest.mark.parametrize("domain, problem", [
    ({"min": 100, "max": 1000, "step": 0}, "step > 0"),
    ({"min": 100, "max": 1000, "step": -100}, "step > 0"),
    ({"min": 100, "max": 1000, "step": float("nan")}, "finite"),
    ({"min": float("nan"), "max": 1000, "step": 100}, "finite"),
    ({"min": 100, "max": float("inf")}, "finite"),
    ({"min": 100, "max": 10 ** 400}, "finite"),
])
def test_degenerate_range_is_refused(tmp_path, domain, problem):
    _refused(tmp_path, {"strategy": {"kind": "random", "samples": 2}, "arch": {"clock_mhz": domain}, **ONE_MODEL},
             "arch.clock_mhz", problem)


def test_a_value_valid_alone_but_not_with_the_base_stays_a_per_point_failure(tmp_path):
    # 1 KiB cannot hold npu-m's 16x16 int32 accumulator tile: that depends on mxu.*, so the point fails
    space = parse_space({"arch": {"sram.acc_kib": [1, 64]}, **ONE_MODEL}, tmp_path)
    assert space.params[0].domain.values == (1, 64)


@pytest.mark.parametrize("patch, words", [
    ({"check": {"inputs": 10 ** 9}}, ("check.inputs", L.CHECK_INPUTS.name)),
    ({"strategy": {"kind": "optuna", "samples": 4, "seed": 2 ** 40}}, ("strategy.seed",)),
    ({"models": [{"path": "a.onnx", "input_shapes": {"x": [1 << 20, 1 << 20]}}]},
     ("input_shapes.x", L.TENSOR_ELEMENTS.name)),
])
def test_other_counts_are_bounded(tmp_path, patch, words):
    _refused(tmp_path, {**ONE_MODEL, **patch}, *words)


def test_cli_explore_refuses_a_huge_space_in_one_line(tmp_path):
    space = tmp_path / "space.toml"
    space.write_text('[strategy]\nkind = "random"\nsamples = 1000000000\n[[models]]\npath = "a.onnx"\n')
    r = run_cli("explore", "--space", space, "--db", tmp_path / "r.db", timeout=120)
    assert r.returncode == 2 and L.SWEEP_POINTS.name in r.stderr and len(r.stderr.strip().splitlines()) == 1

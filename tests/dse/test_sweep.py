"""Real sweeps: stored metrics equal a direct compile + profile, failing points are stored,
results do not depend on the number of workers, nothing is computed twice."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dse_util import DIGITS, stored, write_space
from npukit import api
from npukit.codegen.context import CompileOptions
from npukit.dse import InlineExecutor, PoolExecutor, explore, load_space
from npukit.dse import prepare

GRID = """
[base]
arch = "npu-m"
[strategy]
kind = "grid"
[arch]
"mxu.rows" = [8, 32]
"sram.acc_kib" = [1, 64]          # a 32x16 int32 tile needs 2 KiB: an impossible arch
"regions.dram.size_mib" = [0.0001, 64]   # 100 bytes: no model fits
"regions.dram.bandwidth_gbps" = [2.0, 16.0]
[options]
double_buffer = [true, false]
[check]
inputs = 1
"""


@pytest.fixture(scope="module")
def inline_run(tmp_path_factory, ds_cnn_path):
    d = tmp_path_factory.mktemp("sweep")
    space = load_space(write_space(d, GRID, ds_cnn_path))
    summary = explore(space, d / "runs.sqlite", InlineExecutor(), progress=False)
    return d, space, summary


def test_every_point_is_stored_once_with_its_outcome(inline_run):
    d, space, summary = inline_run
    rows = stored(d / "runs.sqlite")
    assert summary.candidates == 2 * 2 ** 5 and summary.computed == len(rows) == 64 and summary.lost == 0
    for r in rows.values():
        p = json.loads(r["params_json"])
        impossible = p["arch:mxu.rows"] == 32 and p["arch:sram.acc_kib"] == 1
        too_small = p["arch:regions.dram.size_mib"] < 0.001
        if impossible:
            assert r["status"] == "error" and r["error"].startswith("ArchError") and "acc_kib" in r["error"]
        elif too_small:
            assert r["status"] == "error" and r["error"].startswith("ScheduleError") and "'dram'" in r["error"]
        else:
            assert r["status"] == "ok" and r["error"] == "" and r["check_result"] == "pass (1 inputs)"
            assert r["latency_ms"] > 0 and r["energy_uj"] > 0 and r["area_mm2"] > 0 and r["dram_bytes"] > 0
            assert 0 < r["utilisation"] <= 1 and r["sram_peak_bytes"] > 0
        assert r["npukit_version"] and json.loads(r["arch_json"])
    assert summary.failed == sum(r["status"] == "error" for r in rows.values()) == 2 * (8 + 16 - 4)


def test_stored_metrics_equal_a_direct_compile(inline_run, ds_cnn_path):
    d, space, _ = inline_run
    rows = [r for r in stored(d / "runs.sqlite").values() if r["status"] == "ok"]
    for model, shapes in (("digits_cnn", {"x": (1, 1, 8, 8)}), ("ds_cnn", None)):
        r = next(r for r in rows if r["model"] == model and '"arch:mxu.rows": 32' in r["params_json"]
                 and '"options:double_buffer": false' in r["params_json"])
        p = {k.split(":", 1)[1]: v for k, v in json.loads(r["params_json"]).items()}
        arch = space.base.replace({k: v for k, v in p.items() if k != "double_buffer"})
        path = DIGITS if model == "digits_cnn" else ds_cnn_path
        with pytest.warns(UserWarning):
            prof = api.compile(path, arch, shapes, options=CompileOptions(double_buffer=False)).profile()
        assert r["arch_id"] == arch.fingerprint
        assert (r["total_cycles"], r["macs"], r["dram_bytes"], r["sram_peak_bytes"]) == \
            (prof.total_cycles, prof.macs, prof.dram_bytes, prof.sram_peak_bytes)
        assert np.allclose([r["latency_ms"], r["energy_uj"], r["area_mm2"], r["utilisation"]],
                           [prof.latency_ms, prof.energy_uj, prof.area_mm2["total"], prof.utilisation])


def test_two_workers_store_what_one_stores_and_a_rerun_computes_nothing(inline_run, tmp_path):
    d, space, _ = inline_run
    summary = explore(space, tmp_path / "pool.sqlite", PoolExecutor(2), progress=False)
    assert summary.computed == 64
    assert stored(tmp_path / "pool.sqlite") == stored(d / "runs.sqlite")
    again = explore(space, tmp_path / "pool.sqlite", InlineExecutor(), progress=False)
    assert (again.computed, again.reused) == (0, 64)


def test_each_model_is_quantised_once_per_sweep(tmp_path, ds_cnn_path, monkeypatch):
    calls = []
    real = prepare.quantise
    monkeypatch.setattr(prepare, "quantise", lambda spec, quant=(): calls.append(spec.path.name) or real(spec, quant))
    space = load_space(write_space(tmp_path, GRID, ds_cnn_path))
    explore(space, tmp_path / "q.sqlite", InlineExecutor(), progress=False)
    assert sorted(calls) == ["digits_cnn.onnx", "ds_cnn.onnx"]


def test_a_model_that_does_not_compile_is_stored_as_failed_points(tmp_path, ds_cnn_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    space = load_space(write_space(tmp_path, GRID, ds_cnn_path)).with_models([bad])
    summary = explore(space, tmp_path / "bad.sqlite", InlineExecutor(), progress=False)
    rows = [r for r in stored(tmp_path / "bad.sqlite").values() if r["model"] == "bad"]
    assert summary.candidates == 3 * 32 and len(rows) == 32
    assert all(r["status"] == "error" for r in rows)
    assert any("ModelError" in r["error"] for r in rows)


def test_a_models_calibration_file_is_read_and_a_bad_one_is_a_stored_failure(tmp_path):
    """A model's `calibration` file calibrates it (the same graph as the API calibrated on the
    same arrays); an unreadable one fails that model's points with the file named."""
    import numpy as np

    from npukit.compiler import load_model
    from npukit.ptq import quantise
    from npukit.dse.prepare import prepare_model
    from npukit.dse.space import load_space
    from dse_util import DIGITS

    calib = {"x": np.random.default_rng(0).random((4, 1, 1, 8, 8), dtype=np.float32)}
    np.savez(tmp_path / "c.npz", **calib)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    for name in ("c", "bad"):
        (tmp_path / f"{name}.toml").write_text(
            f'[base]\narch = "npu-s"\n[[models]]\npath = "{DIGITS}"\ninput_shapes = {{ x = [1, 1, 8, 8] }}\n'
            f'calibration = "{tmp_path / (name + ".npz")}"\n')
    good = prepare_model(load_space(tmp_path / "c.toml").models[0])
    want = quantise(load_model(DIGITS, {"x": (1, 1, 8, 8)}, None), calib, "minmax", sqnr=False).graph
    assert good.error == "" and good.graph is not None
    assert [repr(n.params) for n in good.graph.nodes] == [repr(n.params) for n in want.nodes]
    bad = prepare_model(load_space(tmp_path / "bad.toml").models[0])
    assert bad.graph is None and "cannot read calibration file" in bad.error and "bad.npz" in bad.error

"""The schedule stage: a compile's schedule written out and read back gives the same program
byte for byte; a hand-edited valid schedule still computes the reference's outputs; one that
does not fit the graph or the arch is refused with one line."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.errors import ScheduleError
from npukit.schedule.plan import Schedule
from npukit.schedule.tiling import ConvTiling
from tests.sim.test_sim_vs_reference import assert_sim_equals_reference

DATA = Path(__file__).resolve().parents[1] / "data" / "mlperf_tiny"
CASES = [("ds_cnn", "u55-256"), ("ds_cnn", "npu-m"), ("mobilenet_v2_035_96", "npu-m"), ("resnet8", "u55-256")]


@pytest.fixture(scope="module")
def compiled():
    return {(m, a): npukit.compile(DATA / f"{m}.tflite", a, sqnr=False) for m, a in CASES}


@pytest.mark.parametrize("model,arch", CASES)
def test_schedule_out_then_in_is_byte_identical(compiled, model, arch, tmp_path):
    first = compiled[model, arch]
    path = tmp_path / "sched.json"
    path.write_text(first.schedule.to_json())
    again = npukit.compile(DATA / f"{model}.tflite", arch, sqnr=False, schedule=path)
    assert again.to_bytes() == first.to_bytes()
    assert Schedule.from_json(path.read_text()) == first.schedule


def test_schedule_records_every_choice(compiled):
    s = compiled["mobilenet_v2_035_96", "npu-m"].schedule
    kinds = {f.kind for f in s.fusion}
    assert kinds <= {"pair", "expansion"} and s.fusion
    conv = [la for la in s.layers if isinstance(la.tiling, ConvTiling)]
    assert conv and all(la.tiling.est_cycles > 0 and la.bound.cycles > 0 for la in conv)
    assert all(p.target == "npu" for p in s.placements)
    prof = compiled["mobilenet_v2_035_96", "npu-m"].profile()
    assert {la.tiling.get("kind") for la in prof.layers} >= {"conv", "fused"}    # typed, in the profile


def _edit_first_conv(s: Schedule) -> Schedule:
    """Another valid tiling for the first dense conv: single rows, rows outer, one buffer."""
    i, la = next((i, la) for i, la in enumerate(s.layers) if isinstance(la.tiling, ConvTiling) and la.tiling.th > 1)
    t = replace(la.tiling, th=1, order="rows_outer", w_resident=False)
    layers = list(s.layers)
    layers[i] = replace(la, tiling=t, buffers=1)
    return replace(s, layers=tuple(layers))


def test_hand_edited_schedule_still_equals_the_reference(compiled):
    base = compiled["resnet8", "u55-256"]
    edited = _edit_first_conv(base.schedule)
    prog = npukit.compile(DATA / "resnet8.tflite", "u55-256", sqnr=False, schedule=edited)
    assert prog.to_bytes() != base.to_bytes()
    rng = np.random.default_rng(0)
    shape = prog.program.inputs[0].shape
    assert_sim_equals_reference(prog, [{prog.input_names[0]: rng.integers(-128, 128, shape).astype(np.int8)}])


def _tamper(s: Schedule, how: str) -> Schedule:
    d = json.loads(s.to_json())
    if how == "tile":
        la = next(la for la in d["layers"] if (la["tiling"] or {}).get("kind") == "conv")
        la["tiling"]["tc"] = 10 ** 6
    elif how == "huge_tile":
        la = next(la for la in d["layers"] if (la["tiling"] or {}).get("kind") == "conv")
        la["tiling"].update(th=1 << 10, tk=1 << 10)
    elif how == "overlap":
        off = [t for t in d["arena"]["tensors"] if t["space"] != "abuf"]
        off[1]["offset"] = off[0]["offset"]
        off[1]["first"], off[1]["last"] = off[0]["first"], off[0]["last"]
    elif how == "layers":
        d["layers"].pop()
    elif how == "type":
        d["layers"][0]["buffers"] = "two"
    elif how == "graph":
        d["graph_fingerprint"] = "0" * 64
    return Schedule.from_json(json.dumps(d))


@pytest.mark.parametrize("how,words", [("tile", "does not fit"), ("huge_tile", "fit"),
                                       ("overlap", "arena"), ("layers", "layers"), ("type", "buffers"),
                                       ("graph", "another graph")])
def test_tampered_schedule_is_refused(compiled, how, words):
    s = compiled["ds_cnn", "u55-256"].schedule
    with pytest.raises(ScheduleError) as e:
        npukit.compile(DATA / "ds_cnn.tflite", "u55-256", sqnr=False, schedule=_tamper(s, how))
    assert words in str(e.value) and "\n" not in str(e.value)


def test_schedule_for_another_arch_is_refused(compiled):
    with pytest.raises(ScheduleError, match="made for arch 'u55-256'"):
        npukit.compile(DATA / "ds_cnn.tflite", "npu-m", sqnr=False, schedule=compiled["ds_cnn", "u55-256"].schedule)


@pytest.mark.parametrize("text", ["{", "[]", '{"schema": 99}', '{"schema": 1}'])
def test_malformed_schedule_json_is_refused(text):
    with pytest.raises(ScheduleError):
        Schedule.from_json(text)


def test_cli_schedule_out_then_in(tmp_path):
    from npukit.testing.fixtures import run_cli
    model, sched = DATA / "ds_cnn.tflite", tmp_path / "s.json"
    cwd = Path(__file__).resolve().parents[2]
    out = run_cli("compile", model, "--arch", "npu-m", "-o", tmp_path / "a.npub", "--schedule-out", sched, cwd=cwd)
    assert out.returncode == 0, out.stderr
    out = run_cli("compile", model, "--arch", "npu-m", "-o", tmp_path / "b.npub", "--schedule-in", sched, cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a.npub").read_bytes() == (tmp_path / "b.npub").read_bytes()
    out = run_cli("compile", model, "--arch", "u55-256", "-o", tmp_path / "c.npub", "--schedule-in", sched, cwd=cwd)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "schedule was made for arch 'npu-m'" in lines[0]


def test_cycles_no_worse_than_before_the_schedule_stage():
    """The small models on both test presets with default options: the schedule's programs
    take at most the cycles recorded from the code that lowered whole programs to choose."""
    from benchmarks.schedule_regression import REPO, measure
    before = json.loads((REPO / "benchmarks" / "schedule_baseline.json").read_text())
    now = measure(False, {"default": {}})
    assert len(now) == 10
    worse = {case: (before[case]["cycles"], got["cycles"]) for case, got in now.items()
             if got["cycles"] > before[case]["cycles"]}
    assert not worse, worse

"""`--trace`: Chrome trace-event JSON with a track per engine and an event per instruction;
`--csv`: the per-layer table. Checked against the profile, the timeline and the program."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from report_util import DIGITS, npukit_cli

import npukit
from npukit.isa import instructions as I
from npukit.report.events import LANE_NAMES


@pytest.fixture(scope="module")
def traced(mobilenet, tmp_path_factory):
    npub, prog = mobilenet
    d = tmp_path_factory.mktemp("trace")
    r = npukit_cli("profile", npub, "--trace", d / "trace.json", "--csv", d / "layers.csv")
    assert r.returncode == 0, r.stderr
    return prog, json.loads((d / "trace.json").read_text()), d


def test_a_track_per_engine_and_an_event_per_instruction(traced):
    prog, trace, _ = traced
    events = trace["traceEvents"]
    threads = {e["tid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert sorted(threads.values()) == sorted(LANE_NAMES.values())       # DMA-in/out, weights, MXU, VPU, host
    spans = [e for e in events if e["ph"] == "X"]
    ins = prog.program.instructions
    assert sorted(e["args"]["instruction"] for e in spans) == list(range(len(ins)))
    t, clock = prog.timeline(), prog.arch.clock_mhz
    layers = [layer.name for layer in prog.program.layers]
    for e in spans:
        i = e["args"]["instruction"]
        assert e["name"] == type(ins[i]).__name__
        assert threads[e["tid"]] == LANE_NAMES[I.engine_of(ins[i])]
        assert e["args"]["layer"] == layers[ins[i].layer]
        assert e["ts"] == pytest.approx(t.start[i] / clock) and e["ts"] + e["dur"] == pytest.approx(t.end[i] / clock)
    # the latest end is the profile's total, in microseconds at the arch's clock
    assert max(e["ts"] + e["dur"] for e in spans) == pytest.approx(prog.profile().total_cycles / clock, rel=1e-12)
    # the MACs of the events add up to the network's (counted by the compiler, per layer)
    assert sum(e["args"]["macs"] for e in spans) == prog.profile().macs


def test_counter_tracks(traced):
    prog, trace, _ = traced
    events = trace["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    counters = [e for e in events if e["ph"] == "C"]
    capacity = {"ABUF": prog.arch.abuf_bytes, "WBUF": prog.arch.wbuf_bytes, "ACC": prog.arch.acc_bytes}
    sram = [c for c in counters if c["name"].startswith("SRAM in use")]
    assert sram and any(v > 0 for c in sram for v in c["args"].values())
    assert all(0 <= c["args"][k] <= capacity[k] for c in sram for k in c["args"])
    # off-chip bytes in flight, recomputed from the transfers' own spans at each counter time
    flight = [c for c in counters if c["name"].startswith("off-chip bytes in flight")]
    assert flight
    eps = 1e-9
    for c in flight[:: max(1, len(flight) // 200)]:
        (region, value), = c["args"].items()
        want = sum(e["args"]["regions"].get(region, 0) for e in spans if "regions" in e["args"]
                   and e["dur"] > 0 and e["ts"] <= c["ts"] + eps and e["ts"] + e["dur"] > c["ts"] + eps)
        assert value == pytest.approx(want)
    assert flight[-1]["args"][next(iter(flight[-1]["args"]))] == 0     # nothing in flight at the end


def test_csv_has_a_row_per_layer_summing_to_the_total(traced):
    prog, _, d = traced
    with open(d / "layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    p = prog.profile()
    assert [r["name"] for r in rows] == [la.name for la in p.layers]
    assert sum(int(r["cycles"]) for r in rows) == p.total_cycles
    assert sum(int(r["macs"]) for r in rows) == p.macs
    assert sum(int(r["offchip_bytes"]) for r in rows) == p.dram_bytes
    assert sum(float(r["network_pct"]) for r in rows) == pytest.approx(100, abs=0.05)
    for r, la in zip(rows, p.layers):
        assert (r["op"], r["target"], r["bound"]) == (la.op, la.target, la.bound)


def test_run_trace_equals_profile_trace_and_digits_csv_keeps_its_noise(traced, digits_calib, tmp_path):
    prog, trace, d = traced
    npub = tmp_path / "digits.npub"
    r = npukit_cli("compile", DIGITS, "--input-shape", "x=1,1,8,8", "--calib", digits_calib, "-o", npub)
    assert r.returncode == 0, r.stderr
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    r = npukit_cli("run", npub, "--input", tmp_path / "x.npy", "-o", tmp_path / "y.npz",
                   "--trace", tmp_path / "run.json")
    assert r.returncode == 0, r.stderr
    r = npukit_cli("profile", npub, "--trace", tmp_path / "prof.json", "--csv", tmp_path / "layers.csv")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "run.json").read_text()) == json.loads((tmp_path / "prof.json").read_text())
    digits = npukit.load(npub)
    with open(tmp_path / "layers.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["cycles"]) for r in rows) == digits.profile().total_cycles
    # the noise stored in the binary at compile time, per layer
    stored = {s["layer"]: s["sqnr_db"] for s in digits.program.meta["sqnr"]}
    noisy = [r for r in rows if r["name"] in stored and stored[r["name"]] is not None]
    assert noisy and all(float(r["sqnr_db"]) == pytest.approx(stored[r["name"]], abs=1e-3) for r in noisy)


def test_an_output_that_cannot_be_written_is_a_one_line_error(mobilenet, tmp_path):
    npub, _ = mobilenet
    (tmp_path / "a_file").write_text("")       # no folder can be made there
    r = npukit_cli("profile", npub, "--csv", tmp_path / "a_file" / "layers.csv")
    assert r.returncode == 2 and r.stderr.startswith("error: cannot write") and len(r.stderr.splitlines()) == 1

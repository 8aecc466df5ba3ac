"""Space files: parsing, grid/random candidates, and one-line errors on bad input."""
from __future__ import annotations

import itertools
import math

import pytest

from npukit.dse.space import parse_space
from npukit.dse.strategies import make_strategy
from npukit.errors import InputError

GRID = {"strategy": {"kind": "grid"},
        "arch": {"mxu.rows": [8, 16], "vpu.lanes": [8, 16, 32], "clock_mhz": {"min": 400, "max": 1000, "step": 200}},
        "options": {"double_buffer": [True, False]},
        "models": [{"path": "a.onnx"}, {"path": "b.onnx"}]}


def test_grid_is_the_full_product_once_per_model(tmp_path):
    space = parse_space(GRID, tmp_path)
    cands = make_strategy(space).ask()
    want = {(m, r, lanes, clk, db) for m in (0, 1) for r in (8, 16) for lanes in (8, 16, 32)
            for clk in (400, 600, 800, 1000) for db in (True, False)}
    got = [(c.model, *[v for _, v in c.values]) for c in cands]
    assert len(got) == len(want) == 2 * 2 * 3 * 4 * 2 and set(got) == want
    assert all(type(v) is int for _, _, _, v, _ in got)   # an integer range stays integer


def test_random_is_seeded_distinct_and_inside_the_ranges(tmp_path):
    data = {"strategy": {"kind": "random", "seed": 3, "samples": 30},
            "arch": {"mxu.rows": [8, 16, 32], "regions.dram.bandwidth_gbps": {"min": 2.0, "max": 32.0, "log": True},
                     "sram.abuf_kib": {"min": 64, "max": 512}},
            "options": {"loop_order": ["auto", "k_outer"]}, "models": [{"path": "a.onnx"}]}
    first = make_strategy(parse_space(data, tmp_path)).ask()
    again = make_strategy(parse_space(data, tmp_path)).ask()
    other = make_strategy(parse_space({**data, "strategy": {**data["strategy"], "seed": 4}}, tmp_path)).ask()
    assert first == again and first != other
    assert len(first) == 30 and len(set(first)) == 30
    for c in first:
        v = dict(c.values)
        assert v["arch:mxu.rows"] in (8, 16, 32) and v["options:loop_order"] in ("auto", "k_outer")
        assert 2.0 <= v["arch:regions.dram.bandwidth_gbps"] <= 32.0
        assert type(v["arch:sram.abuf_kib"]) is int and 64 <= v["arch:sram.abuf_kib"] <= 512
    # log-uniform: about half the draws fall below the geometric midpoint (8 GB/s), not a quarter
    below = sum(dict(c.values)["arch:regions.dram.bandwidth_gbps"] < math.sqrt(2 * 32) for c in first)
    assert 7 <= below <= 23


def test_random_never_exceeds_a_small_space(tmp_path):
    data = {"strategy": {"kind": "random", "samples": 50}, "arch": {"mxu.rows": [8, 16]},
            "options": {"double_buffer": [True, False]}, "models": [{"path": "a.onnx"}]}
    cands = make_strategy(parse_space(data, tmp_path)).ask()
    assert sorted(c.values for c in cands) == sorted(
        ((("arch:mxu.rows", r), ("options:double_buffer", d)) for r, d in itertools.product((8, 16), (True, False))))


@pytest.mark.parametrize("patch, message", [
    ({"arch": {"mxu.rowz": [8]}}, "mxu.rowz"),
    ({"arch": {"regions.hbm.bandwidth_gbps": [8.0]}}, "hbm"),
    ({"options": {"dataflw": ["ws"]}}, "unknown compiler option"),
    ({"options": {"double_buffer": [1]}}, "not a bool"),
    ({"arch": {"clock_mhz": {"min": 400, "max": 800}}}, "grid strategy needs"),
    ({"arch": {"clock_mhz": {"min": 900, "max": 800, "step": 100}}}, "min <= max"),
    ({"strategy": {"kind": "annealing"}}, "annealing"),
    ({"strategy": {"kind": "random"}}, "samples >= 1"),
    ({"check": {"inputs": -1}}, "check.inputs"),
    ({"models": [{"file": "a.onnx"}]}, "models[0]"),
    ({"sweep": {}}, "'sweep'"),
])
def test_bad_space_is_one_clear_error(tmp_path, patch, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_space({**GRID, **patch}, tmp_path)

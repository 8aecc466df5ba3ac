"""Pareto fronts against the definition, checked by brute force on random points."""
from __future__ import annotations

import json

import numpy as np
from hypothesis import given, strategies as st

from npukit.dse.pareto import pareto_front, pareto_mask, parse_objectives


def brute_force(values: list[tuple]) -> list[bool]:
    """Keep a point unless another is no worse in every objective and better in one."""
    def dominates(a, b):
        return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))
    return [not any(dominates(o, p) for o in values) for p in values]


points = st.integers(1, 4).flatmap(lambda k: st.lists(
    st.tuples(*[st.integers(0, 6)] * k), min_size=1, max_size=40))   # small ints: many ties


@given(points)
def test_mask_matches_brute_force(values):
    assert pareto_mask(np.array(values)).tolist() == brute_force(values)


@given(st.lists(st.tuples(st.floats(0, 1e3), st.floats(0, 1), st.sampled_from(["a", "b"])), min_size=1,
                max_size=30))
def test_front_is_per_model_and_maximises_utilisation(pts):
    rows = [{"key": f"{i:04d}", "model": m, "status": "ok", "latency_ms": lat, "utilisation": u,
             "params_json": json.dumps({"i": i})} for i, (lat, u, m) in enumerate(pts)]
    rows.append({"key": "fail", "model": "a", "status": "error", "latency_ms": None, "utilisation": None,
                 "params_json": "{}"})
    front = pareto_front(rows, parse_objectives("latency,utilisation"))
    want = set()
    for m in ("a", "b"):
        group = [r for r in rows if r["model"] == m and r["status"] == "ok"]
        keep = brute_force([(r["latency_ms"], -r["utilisation"]) for r in group])
        want |= {r["key"] for r, k in zip(group, keep) if k}
    assert {r["key"] for r in front} == want

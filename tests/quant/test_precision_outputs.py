"""precision auto's rule per output when its target is out of reach (quant.precision.goals,
qualifies, greedy) and the choice of weight rounding per output (preferred), on hand-worked
cases: a stand-in `measure` giving each output's SQNR for a prefix of widened blocks.

The case the rule is for: a scalar presence flag that no widening lifts (about 8 dB whatever
is widened) beside landmarks that gain 4 dB a block up to 34 dB. Asking only the worst output
to be within 1 dB of all widened, the flag decides and nothing is widened; asking every
output to be within 1 dB of its own SQNR all widened, the landmarks are widened to 34 dB.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from npukit.ir.graph import Graph, Node, Op
from npukit.quant.precision import (UNREACHED_TOLERANCE_DB, Choice, Precision, compare, counted_sqnr, goals, greedy,
                                   preferred, qualifies)

# eight one-tensor blocks, noisiest first a..h (layer n<i> writes the i-th letter, noise i dB)
GRAPH = Graph(tuple(Node(Op.CLAMP, f"n{i}", (), (t,)) for i, t in enumerate("abcdefgh")), {}, (), ())
BLOCKS = [frozenset(t) for t in "hgfedcba"]
NOISE = {f"n{i}": float(i) for i in range(8)}


def test_goals_and_qualifies_hand_worked():
    assert UNREACHED_TOLERANCE_DB == 1.0
    # all widened misses 30 dB on "a": each output within 1 dB of its own, at most the target
    assert goals({"a": 25.0, "b": 40.0}, 30.0) == {"a": 24.0, "b": 30.0}
    assert goals({"a": 25.0, "b": 30.5}, 30.0) == {"a": 24.0, "b": 29.5}
    # all widened meets the target: the target on every output (not 29.5 for the one at 30.5)
    assert goals({"a": 31.0, "b": 30.5}, 30.0) == {"a": 30.0, "b": 30.0}
    assert qualifies({"a": 24.0, "b": 30.0}, {"a": 24.0, "b": 30.0})
    assert not qualifies({"a": 40.0, "b": 29.9}, {"a": 24.0, "b": 30.0})
    assert not qualifies({"a": 40.0}, {"a": 24.0, "b": 30.0})     # an output not measured
    # the outputs counted: those with a signal (a [1, 1] score over one sample has none)
    a = compare("a", [np.array([[3.0, 4.0]])], [np.array([[3.0, 4.5]])])      # 10 log10(25 / 0.25) = 20 dB
    b = compare("b", [np.array([[0.001]])], [np.array([[0.0]])])
    assert counted_sqnr([a, b]) == {"a": pytest.approx(20.0)} and counted_sqnr([b]) == {"b": 0.0}


def flag_and_landmarks(k: int) -> dict[str, float]:
    return {"flag": 8.0 + 0.05 * k, "marks": min(34.0, 10.0 + 4.0 * k)}


def test_an_output_no_widening_lifts_does_not_stop_the_others():
    """Target 40 dB, out of reach: all 8 widened read flag 8.4, marks 34. Goals: flag 7.4,
    marks 33; six blocks give 34 (five: 30), so a..f are widened. The old rule (the worst
    output within 1 dB of its all-widened 8.4 dB) took nothing: 8.0 >= 7.4. Bisection
    measures prefixes 0, 8, 4, 6, 5: as many as with one number."""
    seen = []

    def measure(wide):
        seen.append(len(wide))
        return flag_and_landmarks(len(wide))
    c = greedy(GRAPH, BLOCKS, NOISE, measure, target_db=40.0)
    assert c.wide == frozenset("abcdef") and seen == [0, 8, 4, 6, 5]
    assert c.sqnr_db == pytest.approx(8.3) and c.int8_sqnr_db == 8.0
    assert dict(c.outputs) == pytest.approx({"flag": 8.3, "marks": 34.0})
    assert [v for _, v in c.steps] == pytest.approx([8.2, 8.25, 8.3, 8.4])      # worst per prefix 4, 5, 6, 8
    # with a cost, the cheapest of the qualifying prefixes measured (6 and 8): here all 8
    c = greedy(GRAPH, BLOCKS, NOISE, measure, 40.0, cost=lambda w: 100.0 - len(w))
    assert c.wide == frozenset("abcdefgh")


def test_when_all_widened_meets_the_target_the_worst_output_decides_as_before():
    """Target 30: all widened reads marks 30.5, flag 38 (meets); prefixes of 4-7 read marks
    29.9: they miss 30 although within 1 dB of 30.5, so all 8 are widened. A target met by
    int8 widens nothing and measures once."""
    def measure(wide):
        k = len(wide)
        return {"flag": 30.0 + k, "marks": 30.5 if k == 8 else 29.9 if k >= 4 else 20.0}
    c = greedy(GRAPH, BLOCKS, NOISE, measure, target_db=30.0)
    assert c.wide == frozenset("abcdefgh") and c.sqnr_db == 30.5
    seen = []
    c = greedy(GRAPH, BLOCKS, NOISE, lambda w: seen.append(w) or {"flag": 31.0, "marks": 35.0}, 30.0)
    assert c.wide == frozenset() and len(seen) == 1 and c.sqnr_db == 31.0
    # an output widening makes worse: nothing widened when int8 is within 1 dB on the others
    c = greedy(GRAPH, BLOCKS, NOISE, lambda w: {"x": 20.0 - len(w), "y": 15.0 + 0.1 * len(w)}, 40.0)
    assert c.wide == frozenset() and c.sqnr_db == 15.0


def _p(outputs: dict[str, float], rounding: str, cost: float = 0.0, target: float = 40.0) -> Precision:
    worst = min(outputs.values())
    return Precision("auto", target, "", Choice(frozenset(), worst, 0.0, (), cost, tuple(outputs.items())), rounding)


def test_preferred_compares_roundings_per_output():
    # the flag within 1 dB on all three; the landmarks 6 dB better with sequential: sequential
    # (comparing the worst outputs, 17.8 / 17.5 / 17.6 dB, shipped round-to-nearest)
    three = [_p({"flag": 17.8, "marks": 20.0}, "nearest"), _p({"flag": 17.5, "marks": 23.0}, "gptq"),
             _p({"flag": 17.6, "marks": 26.0}, "sequential")]
    assert preferred(three).rounding == "sequential"
    # the first within 1 dB of the best on every output (best a 21.2, b 25.9)
    three = [_p({"a": 20.0, "b": 25.0}, "nearest"), _p({"a": 20.5, "b": 25.9}, "gptq"),
             _p({"a": 21.2, "b": 25.0}, "sequential")]
    assert preferred(three).rounding == "gptq"
    # none within on every output (best a 25, b 26): the least total shortfall, nearest 5,
    # gptq 3.5 + 0, sequential 2.4 + 3.4 = 5.8 (comparing the worst outputs shipped sequential)
    three = [_p({"a": 25.0, "b": 21.0}, "nearest"), _p({"a": 21.5, "b": 26.0}, "gptq"),
             _p({"a": 22.6, "b": 22.6}, "sequential")]
    assert preferred(three).rounding == "gptq"
    # a tie of shortfalls: the first (nearest 2, gptq 2)
    assert preferred([_p({"a": 23.0, "b": 20.0}, "nearest"), _p({"a": 21.0, "b": 22.0}, "gptq")]).rounding == "nearest"
    # meeting the target decides as before: the cheapest of those meeting it
    met = [_p({"a": 41.0, "b": 45.0}, "nearest", 500.0), _p({"a": 40.0, "b": 50.0}, "gptq", 100.0),
           _p({"a": 20.0, "b": 60.0}, "sequential", 0.0)]
    assert preferred(met).rounding == "gptq"


def test_the_json_keeps_its_fields_and_adds_each_outputs_sqnr():
    p = _p({"flag": 17.6, "marks": 26.0}, "sequential")
    j = json.loads(json.dumps(p.to_json()))
    assert j["sqnr_db"] == 17.6 and j["target_met"] is False and j["rounding"] == "sequential"
    assert {"mode", "min_sqnr", "measured_on", "int8_sqnr_db", "tensors", "steps"} <= set(j)
    assert j["outputs_sqnr_db"] == {"flag": 17.6, "marks": 26.0}

"""precision auto judged with the fold that costs an output most left out (quant.fold_sqnr), on
hand-worked cases: 4 held-out folds of one sample each, the fourth a sample on which every
program reads about 0 dB (as pose-landmark-full's fourth calibration sample does).

Each fold's output is [1, 0] in float, and the program reads [1 - e, 0]: signal power 1 and
noise power e^2 per fold, so every SQNR below is 10 log10(signal / noise) by hand.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from npukit.ir.graph import Graph, Node, Op
from npukit.quant.fold_sqnr import TRIM_MIN_FOLDS, Measurement, measurement, trimmed_db
from npukit.quant.precision import Choice, Precision, compare, counted_sqnr, greedy, preferred


def measured(noise: list[float], output: str = "y") -> Measurement:
    """As quant.search's measure: fold i reads noise power noise[i] on a signal power of 1."""
    ref = [[{output: np.array([1.0, 0.0])}] for _ in noise]
    got = [[{output: np.array([1.0 - np.sqrt(n), 0.0])}] for n in noise]
    pooled = counted_sqnr([compare(output, [r[output] for f in ref for r in f], [x[output] for f in got for x in f])])
    return measurement(pooled, ref, got)


def db(x: float) -> float:
    return float(10 * np.log10(x))


def test_trimmed_sqnr_hand_worked():
    assert TRIM_MIN_FOLDS == 3
    m = measured([0.01, 0.01, 0.01, 1.0])
    # pooled: 4 / 1.03; without the fourth fold: 3 / 0.03 = 20 dB
    assert m.pooled["y"] == pytest.approx(db(4 / 1.03)) and m.trimmed["y"] == pytest.approx(20.0)
    # the fold left out is the one whose removal raises the SQNR most, whichever it is
    assert trimmed_db([(1.0, 0.01), (1.0, 1.0), (1.0, 0.01)]) == pytest.approx(db(2 / 0.02))
    # a heavy fold of a moderate noise ratio (0.4) is left out before a light one of a worse
    # ratio (0.5): pooled without it 2 / 0.51 (5.9 dB) beats 101 / 40.01 (4.0 dB)
    assert trimmed_db([(1.0, 0.5), (100.0, 40.0), (1.0, 0.01)]) == pytest.approx(db(2 / 0.51))
    # two folds: pooled (leaving one out would judge on half the samples)
    two = measured([0.01, 1.0])
    assert two.trimmed["y"] == two.pooled["y"] == pytest.approx(db(2 / 1.01))
    # never below pooled; a fold with no noise left alone reads inf
    assert trimmed_db([(1.0, 0.0), (1.0, 0.0), (1.0, 0.3)]) == np.inf
    # a plain per-output measure (no folds) is both statistics
    assert Measurement.of({"a": 3.0}) == Measurement({"a": 3.0}, {"a": 3.0})
    assert Measurement.of(7.0).trimmed == {"": 7.0}


GRAPH = Graph((Node(Op.CLAMP, "n0", (), ("a",)), Node(Op.CLAMP, "n1", (), ("b",))), {}, (), ())
BLOCKS = [frozenset("a"), frozenset("b")]
NOISE = {"n0": 0.0, "n1": 1.0}
# widened blocks -> the noise power of folds 1-4; the fourth reads 0 dB whatever is widened
FOLDS = {0: [0.1, 0.1, 0.1, 1.0], 1: [0.01, 0.01, 0.01, 1.0], 2: [0.001, 0.001, 0.001, 1.0]}


def test_one_bad_fold_no_longer_sets_the_goal():
    """Target 40 dB, out of reach. Pooled (the old rule): all widened 10 log10(4 / 1.003) =
    6.01 dB, goal 5.01; one block reads 10 log10(4 / 1.03) = 5.89 and qualifies, though on the
    three folds that tell the programs apart it reads 20 dB against all widened's 30. The
    fourth fold left out: all widened 30 dB, goal 29, so one block (20 dB) does not qualify
    and both are widened."""
    old = greedy(GRAPH, BLOCKS, NOISE, lambda w: measured(FOLDS[len(w)]).pooled, target_db=40.0)
    assert old.wide == frozenset("a") and old.sqnr_db == pytest.approx(db(4 / 1.03))
    new = greedy(GRAPH, BLOCKS, NOISE, lambda w: measured(FOLDS[len(w)]), target_db=40.0)
    assert new.wide == frozenset("ab")
    # what is reported stays pooled; the trimmed figures ride beside it
    assert new.sqnr_db == pytest.approx(db(4 / 1.003)) and new.int8_sqnr_db == pytest.approx(db(4 / 1.3))
    assert dict(new.trimmed) == pytest.approx({"y": 30.0}) and new.judged() == dict(new.trimmed)


def test_a_target_met_pooled_is_judged_pooled_as_before():
    """Target 5.5 dB: all widened meets it pooled (6.01), so a prefix must reach it pooled: one
    block (5.89) does; no block (4.88 pooled, 10 dB trimmed) does not, though its trimmed
    SQNR is above the target."""
    c = greedy(GRAPH, BLOCKS, NOISE, lambda w: measured(FOLDS[len(w)]), target_db=5.5)
    assert c.wide == frozenset("a")


def _p(m: Measurement, rounding: str) -> Precision:
    least = min(m.pooled.values())
    return Precision("auto", 40.0, "", Choice(frozenset(), least, 0.0, (), 0.0, tuple(m.pooled.items()),
                                              tuple(m.trimmed.items())), rounding)


def test_the_rounding_is_chosen_on_the_folds_but_the_worst():
    """Round-to-nearest: folds 0.1, 0.1, 0.1, 0.5 (pooled 10 log10(4 / 0.8) = 6.99 dB, trimmed
    10 dB); sequential GPTQ: 0.01 x 3 and the bad fold 1.0 (pooled 5.89, trimmed 20 dB).
    Pooled, sequential is 1.1 dB short of nearest and nearest ships; trimmed, nearest is 10 dB
    short and sequential ships."""
    nearest, seq = measured([0.1, 0.1, 0.1, 0.5]), measured([0.01, 0.01, 0.01, 1.0])
    assert nearest.pooled["y"] - seq.pooled["y"] == pytest.approx(db(4 / 0.8) - db(4 / 1.03))
    old = [_p(Measurement.of(nearest.pooled), "nearest"), _p(Measurement.of(seq.pooled), "sequential")]
    assert preferred(old).rounding == "nearest"
    assert preferred([_p(nearest, "nearest"), _p(seq, "sequential")]).rounding == "sequential"
    j = json.loads(json.dumps(_p(seq, "sequential").to_json()))
    assert j["outputs_sqnr_db"] == {"y": pytest.approx(db(4 / 1.03))} \
        and j["outputs_sqnr_db_trimmed"] == {"y": pytest.approx(20.0)}

"""Exact percentile tails (quant.tails, the percentile and hybrid calibrations): numpy's
0.01 / 99.99 percentiles of every value, whatever the order of the samples or how they are
split into runs and merged; numpy's np.percentile over the concatenated values is the oracle."""
from __future__ import annotations

import numpy as np
import pytest

from npukit.quant.calibrate import Observer, merged
from npukit.quant.tails import Tails, capacity
from npukit.quant.tails import merged as merged_tails

RNG = np.random.default_rng(7)


def _samples(n: int, size: int, ties: bool) -> list[np.ndarray]:
    xs = [(RNG.standard_normal(size) * RNG.uniform(0.1, 10)).astype(np.float32) for _ in range(n)]
    xs[0][: size // 500 + 1] = 50.0          # outliers that one sample alone holds
    return [np.round(x) for x in xs] if ties else xs


@pytest.mark.parametrize("n, size", [(1, 7), (3, 2_000), (4, 40_000), (6, 70_001)])
@pytest.mark.parametrize("ties", [False, True])
def test_tails_give_numpys_percentiles_in_any_order_and_split(n, size, ties):
    xs = _samples(n, size, ties)
    want = tuple(float(v) for v in np.percentile(np.concatenate(xs), [0.01, 99.99]))
    for order in (list(range(n)), list(range(n))[::-1], list(RNG.permutation(n))):
        one = Tails(n)
        for i in order:
            one.update(xs[i])
        assert one.percentiles() == want
        cut = int(RNG.integers(0, n + 1))
        parts = [Tails(n), Tails(n)]
        for k, i in enumerate(order):
            parts[k >= cut].update(xs[i])
        assert merged_tails(parts).percentiles() == want
    if n > 1:       # a fold: every sample but the last, from runs that expected them all
        rest = merged_tails([_fed(Tails(n), xs[:1]), _fed(Tails(n), xs[1:-1])])
        assert rest.percentiles() == tuple(float(v) for v in np.percentile(np.concatenate(xs[:-1]), [0.01, 99.99]))


def _fed(t: Tails, xs: list[np.ndarray]) -> Tails:
    for x in xs:
        t.update(x)
    return t


def test_tails_hold_few_values():
    xs = _samples(4, 1_000_000, False)
    t = _fed(Tails(4), xs)
    assert t.low.size == t.high.size == capacity(4_000_000) < 500


def test_observer_percentile_is_exact_and_ignores_its_seed():
    xs = _samples(3, 50_000, False)
    ranges = set()
    for seed in range(3):
        obs = [Observer(seed + i, "tails", 3) for i in range(3)]
        for o, x in zip(obs, xs):
            o.update(x)
        ranges.add(merged(obs).range("percentile"))
    lo, hi = np.percentile(np.concatenate(xs), [0.01, 99.99])
    assert len(ranges) == 1
    r = ranges.pop()
    assert (r.lo, r.hi) == (float(lo), float(hi)) and not obs[0].samples

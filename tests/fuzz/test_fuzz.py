"""The fuzz suite: seeded mutations of real seed inputs, each case in a forked child with a
memory limit and a timeout. Any failure other than a one-line npukit error fails the test;
the message lists each distinct failure with the command that reproduces it."""
from __future__ import annotations

import pytest

from npukit.testing import fuzz

# cases per target in CI: about 3,000 in all, two minutes on two cores
CI_CASES = {"onnx": 600, "tflite": 600, "npub": 800, "arch": 300, "space": 300, "run": 500}
SEED = 0


def _check(summary: fuzz.Summary) -> None:
    fails = summary.failures()
    if fails:
        pytest.fail(f"{len(fails)} distinct failures:\n" + "\n".join(o.line() for o in fails), pytrace=False)


@pytest.mark.parametrize("target", sorted(CI_CASES))
def test_fuzz(target):
    summary = fuzz.run(fuzz.plan([target], {target: CI_CASES[target]}, SEED))
    assert len(summary.outcomes) == CI_CASES[target]
    _check(summary)


@pytest.mark.slow
def test_fuzz_long():
    targets = [*CI_CASES, "tflite_big"]
    summary = fuzz.run(fuzz.plan(targets, 30_000, seed=1))
    assert len(summary.outcomes) >= 30_000
    _check(summary)


# Cases a long run found (seed 1) and the boundary now refuses in one line: each was a raw
# exception, a MemoryError or a model that compiled and then failed to run.
FOUND = [("arch", 1, 1032), ("npub", 1, 4232), ("onnx", 1, 315), ("onnx", 1, 1326), ("onnx", 1, 2449),
         ("onnx", 1, 1286), ("onnx", 1, 415), ("onnx", 1, 2785), ("onnx", 1, 540), ("onnx", 1, 1188),
         ("onnx", 1, 364), ("tflite", 1, 43), ("tflite", 1, 290), ("tflite", 1, 4848), ("tflite", 1, 633),
         ("onnx", 0, 202), ("onnx", 0, 453), ("onnx", 0, 548), ("tflite", 0, 346)]


def test_cases_found_by_long_runs():
    summary = fuzz.run(FOUND)
    assert len(summary.outcomes) == len(FOUND)
    _check(summary)

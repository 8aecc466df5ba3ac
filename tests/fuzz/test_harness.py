"""The fuzz runner itself: a planted escape, hang, crash or over-allocation is reported as such."""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from npukit.errors import InputError
from npukit.testing import fuzz
from npukit.testing.fuzz_targets import Target


def _toy(case: str, tmp) -> None:
    if case == "ok":
        return
    if case == "refused":
        raise InputError("bad input")
    if case == "multiline":
        raise InputError("bad\ninput")
    if case == "escape":
        {}["missing"]
    if case == "memory":
        np.ones(1 << 40, np.uint8)
    if case == "hang":
        while True:
            pass
    if case == "stuck":                 # deaf to SIGALRM: the parent must kill it
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(60)
    if case == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)


KINDS = ["ok", "refused", "multiline", "escape", "memory", "hang", "stuck", "crash"]
TOYS = {k: Target(k, ".txt", lambda rng, k=k: k, _toy) for k in KINDS}


def test_planted_failures_are_classified():
    s = fuzz.run([(k, 0, 0) for k in KINDS], jobs=2, timeout=1.0, targets=TOYS)
    got = {o.target: o for o in s.outcomes}
    assert {k: got[k].kind for k in KINDS} == {
        "ok": "ok", "refused": "npukit", "multiline": "multiline", "escape": "escape", "memory": "memory",
        "hang": "hang", "stuck": "hang", "crash": "crash"}
    assert got["escape"].cls == "KeyError" and "test_harness.py" not in got["escape"].where
    assert got["stuck"].cls == "Timeout" and got["crash"].cls == "signal SIGSEGV"
    assert {o.target for o in s.failures()} == {"multiline", "escape", "memory", "hang", "stuck", "crash"}
    assert "--target escape --seed 0 --case 0" in got["escape"].line()


def test_cases_are_reproducible():
    from npukit.testing.fuzz_targets import TARGETS
    for name in ("onnx", "tflite", "arch", "space"):
        t = TARGETS[name]
        assert t.make(fuzz.case_rng(name, 3, 7)) == t.make(fuzz.case_rng(name, 3, 7))

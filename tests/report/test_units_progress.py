"""Scaled units (hand-worked cases) and the compiler's stage reports."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.progress import reporting
from npukit.report.units import cycles, energy_uj, seconds

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"


@pytest.mark.parametrize("s, text", [(0.0, "0 ns"), (4e-10, "0.4 ns"), (905 / 800e6, "1.13 us"),
                                     (0.9996e-3, "1 ms"), (0.0123, "12.3 ms"), (2.5, "2.5 s"),
                                     (7200.0, "7.2e+03 s")])
def test_seconds_scale_to_three_digits(s, text):
    assert seconds(s) == text


@pytest.mark.parametrize("uj, text", [(0.689, "689 nJ"), (0.0001, "100 pJ"), (1234.5, "1.23 mJ"),
                                      (6.65, "6.65 uJ")])
def test_energies_scale_to_three_digits(uj, text):
    assert energy_uj(uj) == text


def test_cycles_with_their_time():
    assert cycles(905, 800) == "905 cycles (1.13 us)"
    assert cycles(7_558_622, 1000) == "7,558,622 cycles (7.56 ms)"


def test_compile_reports_each_stage_in_order():
    seen: list[str] = []
    calib = np.random.default_rng(0).random((3, 1, 1, 8, 8), dtype=np.float32)
    with reporting(seen.append):
        npukit.compile(DIGITS, "npu-s", {"x": (1, 1, 8, 8)}, {"x": calib})
    first = [seen.index(s) for s in ("import", "optimise", "calibrate 1/3", "calibrate 3/3", "quantise",
                                     "noise report 1/3", "lower")]
    assert first == sorted(first) and seen[-1] == "lower"


NATIVE = ("import os, warnings\nfrom npukit.progress import native_quiet, one_line_warnings\n"
          "one_line_warnings()\nwith native_quiet():\n    os.write(2, b'native chatter\\n')\n"
          "warnings.warn('two\\nlines')\n")


@pytest.mark.parametrize("verbose", [False, True])
def test_native_stderr_hidden_unless_verbose_and_warnings_one_line(verbose):
    import os
    import subprocess
    import sys
    env = {**os.environ, "NPUKIT_VERBOSE": "1" if verbose else ""}
    r = subprocess.run([sys.executable, "-c", NATIVE], capture_output=True, text=True, env=env, timeout=60,
                       cwd=Path(__file__).resolve().parents[2])
    want = (["native chatter"] if verbose else []) + ["WARNING: two lines"]
    assert r.returncode == 0 and r.stderr.splitlines() == want, r.stderr

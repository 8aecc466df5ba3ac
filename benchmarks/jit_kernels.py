"""The compiled kernels (npukit.quant.jit) against the prepared numpy kernels (npukit.quant.plans)
on MobileNetV2-like shapes: best of many calls, ns per output element, bit-identical results
checked; and the compile time of the first call, with and without numba's on-disk cache (each
measured in a fresh interpreter).

    PYTHONPATH=$PWD python benchmarks/jit_kernels.py
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REQUANT_SHAPES = [(3584, 16), (1568, 24), (784, 32), (196, 96), (49, 160), (12544, 32)]
# (in_hw, c, stride, out_hw): 3x3 depthwise tiles, pad 1
DW_TILES = [((16, 114), 32, 1, (14, 112)), ((15, 113), 96, 2, (7, 56)), ((16, 56), 144, 1, (14, 56)),
            ((14, 14), 576, 1, (14, 14)), ((7, 7), 960, 1, (7, 7))]


def best_us(fn, calls: int) -> float:
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e6


def params(rng, k: int):
    bias = rng.integers(-(1 << 16), 1 << 16, k).astype(np.int32)
    mult = rng.integers(1 << 30, 1 << 31, k).astype(np.int32)
    shift = rng.integers(-10, -5, k).astype(np.int32)
    return bias, mult, shift


def requant_rows() -> None:
    from npukit.quant import jit, plans
    rng = np.random.default_rng(0)
    print("Requant [n, k] -> int8 rows of stride k + 8 | plans.Requantize | jit.requantize | jit.bind | speed-up (bind)")
    for n, k in REQUANT_SHAPES:
        acc = rng.integers(-(1 << 20), 1 << 20, (n, k)).astype(np.int32)
        bias, mult, shift = params(rng, k)
        want, got = np.zeros((n, k + 8), np.int8)[:, :k], np.zeros((n, k + 8), np.int8)[:, :k]
        ref = plans.Requantize((n, k), plans.Scratch()).bind(acc, bias, mult, shift, -3, -128, 127, want)
        fast = jit.bind(jit.requantize, acc, bias, mult, shift, -3, -128, 127, got)
        ref(), fast()
        assert np.array_equal(want, got)
        calls = max(200, 2_000_000 // (n * k))
        t_ref, t_fast = best_us(ref, calls), best_us(fast, calls)
        t_disp = best_us(lambda: jit.requantize(acc, bias, mult, shift, -3, -128, 127, got), calls)
        print(f"[{n}, {k}] | {t_ref:.1f} us ({t_ref * 1e3 / (n * k):.2f} ns/el) | {t_disp:.1f} us "
              f"({t_disp * 1e3 / (n * k):.2f} ns/el) | {t_fast:.1f} us | {t_ref / t_fast:.1f}x")


def depthwise_rows() -> None:
    from npukit.quant import jit, plans
    rng = np.random.default_rng(1)
    print("DwConv 3x3 pad 1 tile | plans.DepthwiseConv + Requantize | jit.depthwise_requant (bound) | speed-up")
    for in_hw, c, stride, out_hw in DW_TILES:
        x = rng.integers(-128, 128, (1, *in_hw, c)).astype(np.int8)
        w = rng.integers(-128, 128, (1, 3, 3, c)).astype(np.int8)
        bias, mult, shift = params(rng, c)
        n = out_hw[0] * out_hw[1]
        scratch = plans.Scratch()
        acc = np.zeros((n, c), np.int32)
        want, got = np.zeros((n, c), np.int8), np.zeros((n, c), np.int8)
        conv = plans.DepthwiseConv(in_hw, c, 1, (3, 3), (stride, stride), (1, 1), (1, 1), out_hw, -5,
                                   scratch).bind(x, w, acc)
        rq = plans.Requantize((n, c), scratch).bind(acc, bias, mult, shift, 4, -128, 127, want)

        def ref() -> None:
            conv()
            rq()
        g = jit.geometry(in_hw, c, 1, (3, 3), (stride, stride), (1, 1), (1, 1), out_hw, -5, 4, -128, 127)
        fast = jit.bind(jit.depthwise_requant, x[0], w[0], bias, mult, shift, g, got)
        ref(), fast()
        assert np.array_equal(want, got)
        calls = max(100, 1_000_000 // (n * c))
        t_ref, t_fast = best_us(ref, calls), best_us(fast, calls)
        print(f"{in_hw[0]}x{in_hw[1]}x{c} s{stride} -> {out_hw[0]}x{out_hw[1]} | {t_ref:.1f} us "
              f"({t_ref * 1e3 / (n * c):.2f} ns/out) | {t_fast:.1f} us ({t_fast * 1e3 / (n * c):.2f} ns/out) "
              f"| {t_ref / t_fast:.1f}x")


FIRST_CALL = """
import time
t = time.perf_counter()
import numpy as np
from npukit.quant import jit
t_import = time.perf_counter() - t
acc, p, out = np.zeros((4, 3), np.int32), np.zeros(3, np.int32), np.zeros((4, 3), np.int8)
t = time.perf_counter(); jit.requantize(acc, p, p, p, 0, -128, 127, out); t_rq = time.perf_counter() - t
g = jit.geometry((2, 2), 3, 1, (3, 3), (1, 1), (1, 1), (1, 1), (2, 2), 0, 0, -128, 127)
x, w = np.zeros((2, 2, 3), np.int8), np.zeros((3, 3, 3), np.int8)
t = time.perf_counter(); jit.depthwise_requant(x, w, p, p, p, g, out); t_dw = time.perf_counter() - t
print(f"import {t_import:.2f} s, first requantize {t_rq:.2f} s, first depthwise_requant {t_dw:.2f} s")
"""


def first_calls() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold (empty cache)", "warm (on-disk cache)"):
            res = subprocess.run([sys.executable, "-c", FIRST_CALL], env=env, capture_output=True, text=True,
                                 check=True)
            print(f"{label}: {res.stdout.strip()}")


if __name__ == "__main__":
    requant_rows()
    depthwise_rows()
    first_calls()

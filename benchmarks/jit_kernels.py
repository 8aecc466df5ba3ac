"""The compiled simulator kernels alone (npukit.sim.jit) on MobileNetV2-like tiles.

    PYTHONPATH=. python benchmarks/jit_kernels.py [reps]

Best of `reps` (500) bound calls each: requantize on int32 tiles into a strided int8 view,
with right-shift parameters (M >= 0, shift <= 0) and with every seventh shift a left one
(the general path); depthwise_requant on 3x3 tiles, stride 1 and 2, multiplier 1 and 3.
Prints ns per element (requantisation) and per output and per MAC (depthwise).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from npukit.sim import jit


def best(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def params(rng, k: int, right: bool):
    bias = rng.integers(-(1 << 14), 1 << 14, k).astype(np.int32)
    mult = rng.integers(1 << 30, (1 << 31) - 1, k).astype(np.int32)
    shift = rng.integers(-10, -4, k).astype(np.int32)
    if not right:
        shift[::7] = 1
    return bias, mult, shift


def main(reps: int) -> None:
    rng = np.random.default_rng(0)
    for right in (True, False):
        for n, k in ((49, 80), (68, 96), (3136, 24), (196, 576)):
            acc = rng.integers(-(1 << 17), 1 << 17, (n, k)).astype(np.int32)
            out = np.zeros((n, k + 16), np.int8)[:, :k]
            t = best(jit.bind(jit.requantize, acc, *params(rng, k, right), -3, -128, 127, out), reps)
            print(f"requantize {'right' if right else 'mixed'} [{n},{k}]: {t * 1e6:7.2f} us  "
                  f"{t * 1e9 / (n * k):.3f} ns/element")
    for sh, (ih, iw), c, cm, (oh, ow) in ((1, (10, 58), 96, 1, (8, 56)), (2, (17, 113), 96, 1, (8, 56)),
                                         (1, (10, 58), 144, 1, (8, 56)), (2, (17, 113), 32, 1, (8, 56)),
                                         (1, (10, 30), 8, 3, (8, 28))):
        k = c * cm
        x = rng.integers(-128, 128, (ih, iw, c)).astype(np.int8)
        w = rng.integers(-128, 128, (3, 3, k)).astype(np.int8)
        g = jit.geometry((ih, iw), c, cm, (3, 3), (sh, sh), (1, 1), (1 if sh == 1 else 0, 1), (oh, ow), -5, 3,
                         -128, 127)
        out = np.zeros((oh * ow, k), np.int8)
        t = best(jit.bind(jit.depthwise_requant, x, w, *params(rng, k, True), g, out), reps)
        print(f"depthwise 3x3 s{sh} [{ih},{iw},{c}]x{cm} -> [{oh},{ow},{k}]: {t * 1e6:7.2f} us  "
              f"{t * 1e9 / (oh * ow * k):.3f} ns/output  {t * 1e9 / (oh * ow * k * 9):.3f} ns/MAC")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)

"""A point's functional check: the simulator against the integer reference, bit-exact, on a
few seeded random inputs, and which of the simulator's two paths runs it.

The simulator's plain path (every instruction on its plain definition, sim/plain.py) loads
nothing; its compiled path needs numba's simulator and onnxruntime's int8 GEMM, which cost
about FAST_LOAD_SECONDS of CPU to load in a process. Both compute the same outputs
(tests/sim/test_fast_paths.py), so the choice never shows in the results. A point binds a new
program and runs it once per input, and so bound, the compiled path saves at most
COMPILED_SAVING of a check's plain time (slower than plain on the digits CNN, ResNet-8 and
MobileNetV2 0.35; BENCHMARKS.md). So it pays back its load only once the plain checks would
have cost FAST_LOAD_SECONDS / COMPILED_SAVING. The rule, per process: run the plain path while
the plain checks' CPU time so far plus the next one's (as long as this model's last plain
check took, or its reference run before any) stays within that budget; after that load the
compiled path and keep it. A sweep of a small model never pays the load.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..arch import Arch

# CPU seconds to load the compiled path in a fresh worker: numba's import and its registries,
# the interpreter's entry point from numba's cache, onnxruntime's GEMM session and its
# exactness probe (measured: BENCHMARKS.md, "Design-space exploration throughput").
FAST_LOAD_SECONDS = 0.6
# The largest share of a check's plain CPU time the compiled path saved on six models, bind
# and one run each (ResNet-18 at 112x112: 0.37 s against 0.53 s; measured: BENCHMARKS.md).
COMPILED_SAVING = 0.3


@dataclass(frozen=True)
class References:
    cases: list[tuple[dict, dict]]   # (seeded input feed, the integer reference's outputs)
    seconds: float                   # CPU time of the reference runs


class PathRule:
    """The rule above, for one process: plain while the plain checks stay within `budget` CPU s."""

    def __init__(self, budget: float = FAST_LOAD_SECONDS / COMPILED_SAVING) -> None:
        self.budget = budget
        self.spent = 0.0                    # CPU s of this process's plain checks
        self.compiled = False               # the compiled path chosen (for good)
        self.last: dict[str, float] = {}    # CPU s of each model's last plain check

    def plain_next(self, model_hash: str, refs: References) -> bool:
        """Whether the next check of the model runs on the plain path."""
        if not self.compiled and self.spent + self.last.get(model_hash, refs.seconds) > self.budget:
            self.compiled = True
        return not self.compiled

    def charge(self, model_hash: str, seconds: float) -> None:
        self.last[model_hash] = seconds
        self.spent += seconds


RULE = PathRule()
_REFERENCES: dict[tuple[str, int], References] = {}   # by (model hash, inputs)


def references(model_hash: str, qgraph, n: int) -> References:
    """`n` seeded random inputs of the graph and the integer reference's outputs on them: the
    same for every point of a model, so computed once per model in a process (the explorer
    computes them before it forks its workers, which then hold them)."""
    from ..sim.reference import run_reference
    if (model_hash, n) not in _REFERENCES:
        rng = np.random.default_rng(0)
        feeds = []
        for _ in range(n):
            feed = {}
            for name in qgraph.inputs:
                t = qgraph.tensors[name]
                info = np.iinfo(t.dtype.np)
                feed[name] = rng.integers(info.min, info.max + 1, size=t.shape).astype(t.dtype.np)
            feeds.append(feed)
        if len(_REFERENCES) >= 8:
            _REFERENCES.clear()
        t0 = time.process_time()
        cases = [(feed, run_reference(qgraph, feed)) for feed in feeds]
        _REFERENCES[model_hash, n] = References(cases, time.process_time() - t0)
    return _REFERENCES[model_hash, n]


def check(program, arch: Arch, model_hash: str, refs: References, plain: bool | None = None) -> str:
    """Functional simulator vs the integer reference's outputs, bit-exact, on each input;
    `plain` None: the path the rule picks."""
    from ..isa import instructions as I
    from ..sim.functional import Simulator
    if plain is None:
        plain = RULE.plain_next(model_hash, refs)
    t0 = time.process_time()
    sim = Simulator(program, {I.ABUF: arch.abuf_bytes, I.WBUF: arch.wbuf_bytes, I.ACC: arch.acc_bytes},
                    plain=plain)
    try:
        for i, (feed, want) in enumerate(refs.cases):
            got = sim.run(feed)
            for name, ref in want.items():
                if not np.array_equal(got[name], ref):
                    bad = int(np.count_nonzero(got[name] != ref))
                    return (f"FAIL: functional check input {i}: output {name!r} differs in {bad} of "
                            f"{ref.size} elements")
        return f"pass ({len(refs.cases)} inputs)"
    finally:
        if plain:
            RULE.charge(model_hash, time.process_time() - t0)

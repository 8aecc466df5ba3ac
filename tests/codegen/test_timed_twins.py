"""A layer's tilings that must time the same as an earlier one are not timed again
(codegen.replay._timings): the (cycles, energy) it gives every candidate equals timing each
one's own lowering on the event model, on real layers where such twins occur; a dataflow
twin's program taken from the earlier one's (`with_dataflow`) is its own lowering."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from npukit.arch import load_arch
from npukit.codegen import replay
from npukit.codegen.context import CompileOptions
from npukit.codegen.lower import lower_program
from npukit.compiler import compile_graph, load_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "transformer"))
from test_wide_graph import feed_forward_graph  # noqa: E402

MODEL = Path(__file__).resolve().parents[1] / "data/mlperf_tiny/mobilenet_v2_035_96.tflite"


def test_twins_get_the_timing_their_own_lowering_has(monkeypatch):
    arch = load_arch("u55-256")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        _, qg, _ = compile_graph(load_model(MODEL, None), arch, None, sqnr=False)
    real, lowered = replay._timings, replay.lowered
    calls = {"lowered": 0, "candidates": 0, "groups": 0}

    def counted(*a, **k):
        calls["lowered"] += 1
        return lowered(*a, **k)

    def checked(ctx, cands, emit, ratio):
        got = real(ctx, cands, emit, ratio)
        want = [replay.timed(lowered(ctx, lambda c, t=t: emit(c, t), ratio), ctx.arch) for t in cands]
        assert got == want
        calls["candidates"] += len(cands)
        calls["groups"] += 1
        return got

    monkeypatch.setattr(replay, "lowered", counted)
    monkeypatch.setattr(replay, "_timings", checked)
    lower_program(qg, arch, CompileOptions(), {})
    assert calls["groups"] > 0
    assert calls["lowered"] < calls["candidates"]     # some dataflow twins were never lowered


def test_a_dataflow_twin_is_the_earlier_lowering_with_its_dataflow(monkeypatch):
    """On npu-s a dense layer's weight- and output-stationary tilings time differently, so
    the twin is timed, on a program made from the earlier one's instead of lowered again."""
    arch = load_arch("npu-s")
    rng = np.random.default_rng(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, qg, _ = compile_graph(feed_forward_graph(rng), arch,
                                 {"x": rng.standard_normal((4, 1, 6, 32)).astype(np.float32)}, sqnr=False)
    real = replay._timings
    pairs = {"flow": 0}

    def checked(ctx, cands, emit, ratio):
        own = [replay.lowered(ctx, lambda c, t=t: emit(c, t), ratio) for t in cands]
        for i, t in enumerate(cands):
            for j, u in enumerate(cands[:i]):
                if replay._same_but_flow(u, t) and not replay._flow_free(own[j], ctx.arch):
                    assert replay.with_dataflow(own[j], t.dataflow) == own[i]
                    pairs["flow"] += 1
        return real(ctx, cands, emit, ratio)

    monkeypatch.setattr(replay, "_timings", checked)
    lower_program(qg, arch, CompileOptions(), {})
    assert pairs["flow"] > 0

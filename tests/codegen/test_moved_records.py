"""A unit recorded for one placement of its tensors and replayed at other addresses (its byte
ranges moved with the tensors) must be what emitting it there gives: the same byte ranges,
and instructions the event model charges alike (it reads spaces and sizes, not addresses)."""
from __future__ import annotations

from pathlib import Path

import pytest

from npukit.arch import load_arch
from npukit.codegen import scheduler as S
from npukit.codegen.context import CompileOptions
from npukit.codegen.replay import _Replay
from npukit.compiler import compile_graph, load_model
from npukit.cost.timing import _Model

DATA = Path(__file__).resolve().parents[1] / "data" / "mlperf_tiny"


@pytest.mark.parametrize("model, preset", [("ds_cnn", "npu-m"), ("mobilenet_v1_025_96", "u55-256")])
def test_a_moved_record_equals_a_fresh_emission(monkeypatch, model, preset):
    arch = load_arch(preset)
    _, qg, _ = compile_graph(load_model(DATA / f"{model}.tflite", None), arch, None, sqnr=False)
    moved = []
    recorded = S._Scheduler._recorded

    def check(self, ctx, k, assign, flip, ratio):
        emitted = len(self.memo.layouts)
        out = recorded(self, ctx, k, assign, flip, ratio)
        if out is not None and len(self.memo.layouts) == emitted:
            fresh = self.emitted(ctx, k, assign, flip, ratio)[0]
            model = _Model(_Replay([]), ctx.arch)
            assert len(out[0]) == len(fresh)
            for (a, ra, wa), (b, rb, wb) in zip(out[0], fresh):
                assert [tuple(r) for r in ra] == [tuple(r) for r in rb]
                assert [tuple(w) for w in wa] == [tuple(w) for w in wb]
                assert type(a) is type(b) and a.layer == b.layer and model.charge(a) == model.charge(b)
            moved.append(all(out[0] is not v[0] for v in self.memo.layouts.values() if v))   # ranges shifted
        return out
    monkeypatch.setattr(S._Scheduler, "_recorded", check)
    g = S.prepare(qg)[0]
    s = S._Scheduler(g, arch, CompileOptions())
    s.fitting(s.fusion())
    assert len(s.memo.layouts) < len(s.memo.units)      # some units were replayed at other addresses
    assert any(moved)

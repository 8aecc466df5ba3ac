"""A unit's record for one slot side, derived from its record for the other (each SRAM slot
moved to where allocation from the other end puts it: `emitter.flipped`), must be what
emitting it from that side gives: the same byte ranges, the same slots, and instructions the
event model charges alike (it reads spaces and sizes, not addresses)."""
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


@pytest.mark.parametrize("model, preset", [("ds_cnn", "npu-m"), ("mobilenet_v1_025_96", "u55-256"),
                                           ("mobilenet_v2_035_96", "u55-256")])
def test_a_flipped_record_equals_a_fresh_emission(monkeypatch, model, preset):
    arch = load_arch(preset)
    _, qg, _ = compile_graph(load_model(DATA / f"{model}.tflite", None), arch, None, sqnr=False)
    derived, fresh_calls = [], []
    recorded, emitted = S._Scheduler._recorded, S._Scheduler.emitted

    def counting(self, *args):
        fresh_calls.append(1)
        return emitted(self, *args)

    def check(self, ctx, k, assign, flip, ratio):
        layouts, calls = len(self.memo.layouts), len(fresh_calls)
        out = recorded(self, ctx, k, assign, flip, ratio)
        if out is not None and len(self.memo.layouts) > layouts and len(fresh_calls) == calls:
            record = next(reversed(self.memo.layouts.values()))     # the derived one, just added
            fresh = emitted(self, ctx, k, assign, flip, ratio)
            charge = _Model(_Replay([]), ctx.arch).charge
            assert len(out[0]) == len(fresh[0]) and out[1] == fresh[1]
            for (a, ra, wa), (b, rb, wb) in zip(out[0], fresh[0]):
                assert [tuple(r) for r in ra] == [tuple(r) for r in rb]
                assert [tuple(w) for w in wa] == [tuple(w) for w in wb]
                assert type(a) is type(b) and a.layer == b.layer and charge(a) == charge(b)
            assert record[2] == fresh[2]        # its slots: what a record derived from it starts from
            derived.append(k)
        return out
    monkeypatch.setattr(S._Scheduler, "emitted", counting)
    monkeypatch.setattr(S._Scheduler, "_recorded", check)
    g = S.prepare(qg)[0]
    s = S._Scheduler(g, arch, CompileOptions())
    s.fitting(s.fusion())
    assert derived      # some units were recorded from their other slot side

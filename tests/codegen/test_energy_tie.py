"""How the scheduler picks among a layer's timed tilings (codegen.replay.fastest): the fastest,
unless another lies within `energy_tie` of its cycles with less dynamic energy. The event
model's answers are replaced by hand-written (cycles, energy) pairs; the real ones are checked
end to end by the whole-network tests and the roofline benchmark."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from npukit.arch import load_arch
from npukit.codegen import replay
from npukit.codegen.context import CompileOptions
from npukit.schedule.memo import Memo

ARCH = load_arch("npu-m")


def _pick(monkeypatch, timed, tie, memo=None):
    answers = dict(enumerate(timed))
    monkeypatch.setattr(replay, "lowered", lambda ctx, emit, ratio=1.0: [emit(None)])
    monkeypatch.setattr(replay, "timed", lambda prog, arch, charges=None: prog[0])
    ctx = SimpleNamespace(options=CompileOptions(energy_tie=tie), memo=Memo() if memo is None else memo, arch=ARCH)
    return replay.fastest(ctx, list(range(len(timed))), lambda cx, t: answers[t], key=("case", tuple(timed)))


@pytest.mark.parametrize("timed, tie, want", [
    ([(1000, 50.0), (1005, 40.0), (1020, 10.0)], 0.01, 1),    # 1020 is 2% slower: out of the tie
    ([(1000, 50.0), (1005, 40.0), (1020, 10.0)], 0.03, 2),
    ([(1000, 50.0), (1005, 40.0), (1020, 10.0)], 0.0, 0),     # 0: the fastest only
    ([(1010, 5.0), (1000, 50.0), (1000, 40.0)], 0.0, 1),      # equal cycles: the first of them
    ([(1010, 5.0), (1000, 50.0), (1000, 50.0)], 0.005, 1),    # equal energy: the first of them
    ([(1010, 5.0), (1000, 50.0), (1000, 40.0)], 0.01, 0),     # 1% of 1000 includes 1010
])
def test_fastest_within_the_tie_then_least_energy(monkeypatch, timed, tie, want):
    assert _pick(monkeypatch, timed, tie) == want


def test_a_remembered_choice_depends_on_the_tie(monkeypatch):
    timed = [(1000, 50.0), (1005, 40.0)]
    memo = Memo()       # one compile's: the choice under tie 0 is remembered, not reused for 0.01
    assert _pick(monkeypatch, timed, 0.0, memo) == 0
    answers = dict(enumerate(timed))
    ctx = SimpleNamespace(options=CompileOptions(energy_tie=0.01), memo=memo, arch=ARCH)
    assert replay.fastest(ctx, [0, 1], lambda cx, t: answers[t], key=("case", tuple(timed))) == 1

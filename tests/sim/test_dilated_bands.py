"""A dilated conv's tile loads only the kh bands of input rows its kernel rows read (CRAFT's
ASPP: dilations 6-24, a whole window of 2 x dilation + rows loaded for 3 of them), packed in
ABUF and read with the band height as the row dilation: the simulator equals the integer
reference (int8 and int16, strides 1 and 2, tiles of 1-2 rows, bands reaching into the
padding at the edges, filled with the zero point), and the program moves fewer bytes."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.sim.reference import run_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frontend"))
from onnx_testutil import model_bytes, node  # noqa: E402


def _compile(tmp_path, c, h, w, d, stride, pad, options, precision="int8"):
    rng = np.random.default_rng(d)
    weights = (rng.standard_normal((c, c, 3, 3)) * 0.2).astype(np.float32)
    mb = model_bytes([node("Conv", ["x", "w"], ["y"], dilations=[d, d], pads=[pad] * 4, strides=[stride] * 2)],
                     {"x": (1, c, h, w)}, ["y"], {"w": weights})
    path = tmp_path / f"dilated{d}.onnx"
    path.write_bytes(mb)
    xs = rng.uniform(-1, 1, (4, 1, c, h, w)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(path, "npu-m", calibration={"x": xs}, sqnr=False, options=options, precision=precision)
    return prog, xs


@pytest.mark.parametrize("d, stride, pad, rows, precision", [(4, 1, 4, 2, "int8"), (5, 2, 5, 2, "int8"),
                                                             (6, 1, 0, 1, "int8"), (3, 1, 2, 1, "int8"),
                                                             (6, 1, 6, 2, "int16")])
def test_dilated_conv_bands_equal_the_reference(tmp_path, d, stride, pad, rows, precision):
    prog, xs = _compile(tmp_path, 16, 40, 20, d, stride, pad, {"max_tile_rows": rows}, precision)
    ints = prog._ints({"x": xs[1]})
    np.testing.assert_array_equal(prog.run_int(ints)["y"], run_reference(prog.qgraph, ints)["y"])


def test_bands_move_fewer_bytes(tmp_path):
    """Rows between the taps are not loaded: an input too large to stay in ABUF, tiles of one
    row, dilation 8: the conv moves under half the bytes of a window of 2 x 8 + 1 rows per
    output row (2,220,841 bytes before the bands, 500,521 with them)."""
    c, h, w, d = 32, 64, 64, 8
    prog, xs = _compile(tmp_path, c, h, w, d, 1, d, {"max_tile_rows": 1})
    conv = next(la for la in prog.profile().layers if la.op == "conv2d")
    assert conv.dram_bytes < h * (2 * d + 1) * w * c / 3
    ints = prog._ints({"x": xs[0]})
    np.testing.assert_array_equal(prog.run_int(ints)["y"], run_reference(prog.qgraph, ints)["y"])

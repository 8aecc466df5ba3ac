"""An int16 activation's scale holds its observed extremes whatever the calibration method
(TFLite's 16x8 scheme calibrates int16 activations by min / max): a percentile or MSE range
clips 1 in 10^4 values, which int8's 256 steps may be worth, but at int16's 65536 steps the
saturation costs far more than the step it saves (PP-OCRv6's detector: convs alone at 34-46
dB all-int16, ~80 dB with their extremes held)."""
from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from npukit.codegen.context import CompileOptions
from npukit.compiler import load_model
from npukit.ir.graph import DType
from npukit.measure import quantize_inputs, real_values
from npukit.ptq import quantise
from npukit.quant.calibrate import Observer, Range
from npukit.quant.quantize import WIDE_CAP, wide_amax
from npukit.sim.reference import run_reference


def _model(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.4, (4, 4, 1, 1)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "c",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 32, 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 32, 32])],
                              [numpy_helper.from_array(w, "w")])
    path = tmp_path / "c.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    x = rng.normal(0, 1, (16, 1, 4, 32, 32)).astype(np.float32)
    x[3, 0, 1, 2, 5] = 9.0          # one outlier of 65536 values: past the 99.99th percentile
    return path, x


def test_int16_scale_holds_the_extremes_percentile_clips(tmp_path):
    path, x = _model(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantise(load_model(path, None, {}, []), {"x": x}, method="percentile", sqnr=False,
                      options=replace(CompileOptions(), precision="int16")).graph
    t = qg.tensors["x"]
    assert t.dtype is DType.I16
    # closed form: the scale is max |x| / 32767 of what calibration saw (float32, as TFLite's)
    assert t.quant.s == np.float32(np.abs(x).max() / 32767)
    # the outlier input reads back within half a step (a percentile scale saturated it near 4)
    got = run_reference(qg, quantize_inputs(qg, {"x": x[3]}), keep_all=True)
    assert abs(real_values(t, got["x"])[0, 1, 2, 5] - 9.0) <= t.quant.s / 2


def test_int8_keeps_the_percentile_range(tmp_path):
    path, x = _model(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantise(load_model(path, None, {}, []), {"x": x}, method="percentile", sqnr=False).graph
    t = qg.tensors["x"]
    assert t.dtype is DType.I8 and (127 - t.quant.zp) * t.quant.s < 6.0     # clipped: 9.0 not held


def test_wide_amax_is_the_extremes_up_to_4x_the_clipped_range():
    o = Observer(0, "tails", expected=1)
    o.update(np.r_[np.linspace(-1, 1, 20000), 3.0].astype(np.float32))
    r = o.range("percentile")
    assert r.hi < 1.01 and r.full == (-1.0, 3.0)
    assert wide_amax(r) == 3.0
    assert WIDE_CAP == 4.0 and wide_amax(Range(-1.0, 1.0, (-1.0, 1000.0))) == 4.0
    assert wide_amax(Range(-2.0, 1.0)) == 2.0

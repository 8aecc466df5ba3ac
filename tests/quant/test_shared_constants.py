"""A constant operand shared by several MAXIMUM / MINIMUM nodes (TFLite keeps one tensor for
every layer's `max(x, -0.4)`, as openWakeWord's embedding model has it) is quantised at each
node's own output scale: one copy per node, not the last node's scale for all."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from npukit.api import compile as npu_compile
from npukit.testing.tflite_builder import Operator, build_model, run_default
from npukit.testing.tflite_builder import TensorSpec as T

SHAPE = (1, 6, 6, 4)


@pytest.mark.parametrize("op", ["MAXIMUM", "MINIMUM"])
def test_shared_constant_operand_follows_each_output(op, tmp_path):
    x, gain = T("x", SHAPE, "float32"), T("gain", (), "float32", data=np.asarray(25.0, np.float32))
    bound = T("bound", (), "float32", data=np.asarray(-0.4 if op == "MAXIMUM" else 0.4, np.float32))
    wide, narrow_out, wide_out = T("wide", SHAPE, "float32"), T("narrow_out", SHAPE, "float32"), T("wide_out", SHAPE,
                                                                                                   "float32")
    ops = [Operator(op, (x, bound), (narrow_out,)),                  # x in [-1, 1]
           Operator("MUL", (x, gain), (wide,)),
           Operator(op, (wide, bound), (wide_out,))]                 # 25 x in [-25, 25]
    model = build_model(ops, [x], [narrow_out, wide_out])
    path = tmp_path / "shared.tflite"
    path.write_bytes(model)
    rng = np.random.default_rng(2)
    calib = rng.uniform(-1, 1, (8, *SHAPE)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npu_compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    for sample in calib[:3]:
        want = dict(zip(["narrow_out", "wide_out"], run_default(model, [sample])))
        got = prog.run({"x": sample})
        for name in want:
            step = float(next(t for t in prog.program.outputs if t.name == name).scale)
            assert np.abs(got[name] - want[name]).max() <= 1.5 * step, name

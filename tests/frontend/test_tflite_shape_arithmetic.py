"""Shape arithmetic in a TFLite graph (Keras' dynamic Reshape, as basic-pitch's converted
model has it): SHAPE of an activation, a STRIDED_SLICE of its batch to a scalar, a PACK of
that scalar with constants into the new shape. Operators whose inputs are all constants are
folded at import, so the PACK of scalars becomes the Reshape's constant shape instead of an
NPU concatenation of constants."""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.ir.graph import Op
from npukit.testing.tflite_builder import Operator, build_model, run_reference
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import options as _opts


def _i32(*values) -> np.ndarray:
    return np.asarray(values, np.int32)


def _model() -> bytes:
    x = T("x", (1, 6, 4), scale=0.05, zero_point=3)
    shape, batch = T("shape", (3,), "int32"), T("batch", (), "int32")
    minus1, eight = T("minus1", (), "int32", data=np.asarray(-1, np.int32)), T("eight", (), "int32",
                                                                              data=np.asarray(8, np.int32))
    new_shape, y = T("new_shape", (3,), "int32"), T("y", (1, 3, 8), scale=0.05, zero_point=3)
    ops = [Operator("SHAPE", (x,), (shape,), _opts(tfl.ShapeOptionsT, outType=tfl.TensorType.INT32)),
           Operator("STRIDED_SLICE", (shape, T("b", (1,), "int32", data=_i32(0)), T("e", (1,), "int32", data=_i32(1)),
                                      T("s", (1,), "int32", data=_i32(1))), (batch,),
                    _opts(tfl.StridedSliceOptionsT, shrinkAxisMask=1)),
           Operator("PACK", (batch, minus1, eight), (new_shape,), _opts(tfl.PackOptionsT, valuesCount=3, axis=0)),
           Operator("RESHAPE", (x, new_shape), (y,), None)]
    return build_model(ops, [x], [y])


def test_shape_arithmetic_folds_into_the_reshape(tmp_path):
    path = tmp_path / "shape.tflite"
    path.write_bytes(model := _model())
    prog = npu_compile(path, "npu-m")
    assert [n.op for n in prog.qgraph.nodes] == [Op.RESHAPE]
    rng = np.random.default_rng(4)
    for _ in range(3):
        x = rng.integers(-128, 128, size=(1, 6, 4)).astype(np.int8)
        want = run_reference(model, [x])[0]
        np.testing.assert_array_equal(prog.run({prog.input_names[0]: x})[prog.output_names[0]], want)

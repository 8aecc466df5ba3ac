"""A float TFLite model whose input length is dynamic (-1 in the file's shape signature, 1
stored as a placeholder), shaped like openWakeWord's log-mel model: a strided 1-D convolution
over the samples, squared, a BATCH_MATMUL by a constant matrix, a MINIMUM by +inf (what
clip_by_value exports; dropped, since no int8 code stands for it), and a floor relative to
the global maximum (REDUCE_MAX to a scalar). Compiled at the length the user gives, every layer
runs on the NPU and agrees with LiteRT resized to that length."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter

from npukit.api import compile as npu_compile
from npukit.errors import InputError, ModelError
from npukit.testing.tflite_builder import Operator, TensorSpec as T, build_model

T_LEN, K, STRIDE, CH, MELS = 64, 16, 8, 4, 3
FRAMES = (T_LEN - K) // STRIDE + 1


def _model() -> bytes:
    rng = np.random.default_rng(0)
    f = "float32"
    x = T("x", (1, 1, T_LEN, 1), f)
    w = T("w", (CH, 1, K, 1), f, data=rng.normal(size=(CH, 1, K, 1)).astype(np.float32) / 4)
    conv, sq = T("conv", (1, 1, FRAMES, CH), f), T("sq", (1, 1, FRAMES, CH), f)
    mel_w = T("mel_w", (CH, MELS), f, data=np.abs(rng.normal(size=(CH, MELS))).astype(np.float32))
    mel, top = T("mel", (1, 1, FRAMES, MELS), f), T("top", (), f)
    clipped, inf = T("clipped", (1, 1, FRAMES, MELS), f), T("inf", (1,), f, data=np.array([np.inf], np.float32))
    axes = T("axes", (4,), "int32", data=np.arange(4, dtype=np.int32))
    floor, y = T("floor", (1,), f), T("y", (1, 1, FRAMES, MELS), f)
    conv_o = tfl.Conv2DOptionsT()
    conv_o.strideH, conv_o.strideW, conv_o.padding = 1, STRIDE, tfl.Padding.VALID
    conv_o.dilationHFactor = conv_o.dilationWFactor = 1
    ops = [Operator("CONV_2D", (x, w, T("bias", (CH,), f, data=np.zeros(CH, np.float32))), (conv,), conv_o),
           Operator("MUL", (conv, conv), (sq,), tfl.MulOptionsT()),
           Operator("BATCH_MATMUL", (sq, mel_w), (mel,), tfl.BatchMatMulOptionsT()),
           Operator("MINIMUM", (mel, inf), (clipped,)),
           Operator("REDUCE_MAX", (clipped, axes), (top,), tfl.ReducerOptionsT()),
           Operator("SUB", (top, T("eight", (1,), f, data=np.array([8.0], np.float32))), (floor,), tfl.SubOptionsT()),
           Operator("MAXIMUM", (clipped, floor), (y,))]
    model = tfl.ModelT.InitFromPackedBuf(bytearray(build_model(ops, [x], [y])), 0)
    for t in model.subgraphs[0].tensors:         # as a converter writes a dynamic length
        if t.name.decode() == "x":
            t.shape, t.shapeSignature = np.array([1, 1, 1, 1], np.int32), np.array([1, 1, -1, 1], np.int32)
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _litert(model: bytes, x: np.ndarray) -> np.ndarray:
    it = Interpreter(model_content=model)
    it.resize_tensor_input(0, list(x.shape), strict=True)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


def test_dynamic_length_compiles_at_the_given_length_and_agrees_with_litert(tmp_path):
    path = tmp_path / "melspec.tflite"
    path.write_bytes(model := _model())
    rng = np.random.default_rng(1)
    calib = rng.normal(size=(8, 1, 1, T_LEN, 1)).astype(np.float32)
    prog = npu_compile(path, "npu-m", input_shapes={"x": (1, 1, T_LEN, 1)}, calibration={"x": calib}, sqnr=False)
    assert prog.profile().host_ops == []
    ops = [la.op for la in prog.program.layers]
    assert {"fully_connected", "reduce_max"} <= set(ops) and "minimum" not in ops
    y_io = prog.program.outputs[0]
    for x in calib[:3]:                          # inside the calibrated ranges: no clipping
        want, got = _litert(model, x), prog.run({"x": x})["y"]
        assert got.shape == want.shape == (1, 1, FRAMES, MELS)
        # four int8 layers in a row, each rounding once: within 4 output steps of float
        assert np.abs(got - want).max() <= 4 * y_io.scale, (np.abs(got - want).max() / y_io.scale)


def test_unsized_dynamic_input_is_a_one_line_error_that_says_to_size_it(tmp_path):
    path = tmp_path / "melspec.tflite"
    path.write_bytes(_model())
    with pytest.raises(ModelError, match=r"input 'x' \(dynamic axes \[2\]\) unsized: give --input-shape"):
        npu_compile(path, "npu-m")


@pytest.mark.parametrize("shape", [(2, 1, T_LEN, 1), (1, 1, T_LEN)])
def test_only_dynamic_axes_may_change(tmp_path, shape):
    path = tmp_path / "melspec.tflite"
    path.write_bytes(_model())
    with pytest.raises(InputError, match=r"fixes its shape to \[1, 1, -1, 1\]"):
        npu_compile(path, "npu-m", input_shapes={"x": shape})


L, STEP = 48, 8


def _framed_model() -> bytes:
    """A dynamic batch ([-1, L] stored as [1, L]) framed as tf.signal.frame writes it: the
    input's SHAPE split into [batch], [length] and an empty rest (SPLIT_V), the frame count
    computed on scalars (RESHAPE by an empty shape, FLOOR_DIV), the input RESHAPEd to it and
    scaled. The file stores the frame
    tensors with one placeholder frame: only LiteRT's run sizes them."""
    f, i = "float32", "int32"
    x, shape = T("x", (1, L), f), T("shape", (2,), i)
    batch, length, rest = T("batch", (1,), i), T("length", (1,), i), T("rest", (0,), i)
    scalar, count = T("scalar", (), i), T("count", (), i)
    frames, dims = T("frames", (1,), i), T("dims", (3,), i)
    framed, y = T("framed", (1, 1, STEP), f), T("y", (1, 1, STEP), f)
    window = T("window", (STEP,), f, data=np.hanning(STEP).astype(np.float32))
    split = tfl.SplitVOptionsT()
    split.numSplits = 3
    shape_o = tfl.ShapeOptionsT()
    shape_o.outType = tfl.TensorType.INT32
    ops = [Operator("SHAPE", (x,), (shape,), shape_o),
           Operator("SPLIT_V", (shape, T("sizes", (3,), i, data=np.array([1, 1, 0], np.int32)),
                                T("axis", (), i, data=np.array(0, np.int32))), (batch, length, rest), split),
           # the length as a scalar: a RESHAPE by an empty constant shape (no bytes in the file)
           Operator("RESHAPE", (length, T("scalar_shape", (0,), i, data=np.zeros(0, np.int32))), (scalar,),
                    tfl.ReshapeOptionsT()),
           Operator("FLOOR_DIV", (scalar, T("step", (), i, data=np.array(STEP, np.int32))), (count,)),
           Operator("RESHAPE", (count, T("one", (1,), i, data=np.array([1], np.int32))), (frames,),
                    tfl.ReshapeOptionsT()),
           Operator("CONCATENATION", (batch, frames, T("step_dim", (1,), i, data=np.array([STEP], np.int32))),
                    (dims,), tfl.ConcatenationOptionsT()),
           Operator("RESHAPE", (x, dims), (framed,), tfl.ReshapeOptionsT()),
           Operator("MUL", (framed, window), (y,), tfl.MulOptionsT())]
    model = tfl.ModelT.InitFromPackedBuf(bytearray(build_model(ops, [x], [y])), 0)
    for t in model.subgraphs[0].tensors:
        if t.name.decode() == "x":
            t.shapeSignature = np.array([-1, L], np.int32)
    import flatbuffers
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_computed_shapes_are_sized_by_litert_even_at_the_stored_input_shape(tmp_path):
    """The given shape equals the stored placeholder, yet the frame tensors' stored shapes are
    stale: they are taken from LiteRT's run, and the empty split piece is no error."""
    path = tmp_path / "framed.tflite"
    path.write_bytes(model := _framed_model())
    calib = np.random.default_rng(2).uniform(-1, 1, (8, 1, L)).astype(np.float32)
    prog = npu_compile(path, "npu-m", input_shapes={"x": (1, L)}, calibration={"x": calib}, sqnr=False)
    y_io = prog.program.outputs[0]
    for x in calib[:3]:
        want, got = _litert(model, x), prog.run({"x": x})["y"]
        assert got.shape == want.shape == (1, L // STEP, STEP)
        assert np.abs(got - want).max() <= 2 * y_io.scale


def test_an_open_batch_alone_compiles_for_batch_1_with_a_warning(tmp_path):
    """No --input-shape: the stored placeholders do not import (one frame), but only the batch
    is open, so the model is sized at its stored batch, as the ONNX frontend does."""
    from npukit.errors import DynamicBatchWarning
    path = tmp_path / "framed.tflite"
    path.write_bytes(model := _framed_model())
    calib = np.random.default_rng(3).uniform(-1, 1, (8, 1, L)).astype(np.float32)
    with pytest.warns(DynamicBatchWarning, match="input 'x' has a dynamic batch dimension: compiled for batch 1"):
        prog = npu_compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    want, got = _litert(model, calib[0]), prog.run({"x": calib[0]})["y"]
    assert got.shape == want.shape == (1, L // STEP, STEP)

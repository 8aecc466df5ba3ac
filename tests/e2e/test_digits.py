"""The bundled example: a CNN trained on scikit-learn's digits keeps its accuracy in int8."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

import npukit
from npukit.models.datasets import digits_split

MODEL = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"


def test_int8_top1_within_one_point_of_float():
    split = digits_split(seed=0)
    prog = npukit.compile(MODEL, arch="npu-m", input_shapes={"x": (1, 1, 8, 8)},
                          calibration={"x": split.x_train[:64][:, None]})
    sess = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    float_top1 = sess.run(None, {"x": split.x_test})[0].argmax(axis=1)
    int8_top1 = np.array([np.argmax(prog.run({"x": x[None]})[prog.output_names[0]]) for x in split.x_test])
    acc_float = np.mean(float_top1 == split.y_test)
    acc_int8 = np.mean(int8_top1 == split.y_test)
    assert len(split.y_test) >= 300
    assert acc_float >= 0.95
    assert acc_int8 >= acc_float - 0.01, (acc_float, acc_int8)

"""The Fashion-MNIST CNN trained in the repo: int8 on the NPU loses at most 1 point."""
import numpy as np
import pytest

from workload_util import need_data

N_TEST = 2000


def test_int8_fashion_accuracy_within_one_point_of_float():
    from vision import vision
    from npukit.models.datasets_vision import DataMissingError, fashion_mnist
    if not vision.FASHION_MODEL.is_file():
        pytest.fail("examples/vision/fashion_cnn.onnx is missing")
    try:
        split = fashion_mnist()
    except DataMissingError as exc:
        need_data(exc)
    calib = split.x_train[np.random.default_rng(0).choice(len(split.x_train), vision.CALIBRATION, replace=False)]
    x, y = split.x_test[:N_TEST], split.y_test[:N_TEST]
    prog = vision.compile_fashion("npu-m", calib)
    float_acc = np.mean(vision.run_float(vision.FASHION_MODEL, "x", x).argmax(1) == y)
    int8_acc = np.mean(vision.run_int8(prog, "x", x).argmax(1) == y)
    assert float_acc > 0.85, float_acc
    assert int8_acc >= float_acc - 0.01, (float_acc, int8_acc)

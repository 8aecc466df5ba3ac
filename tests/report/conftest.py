"""Compiled models the report tests share: a small MobileNetV2 from the zoo and the bundled
digits CNN (calibrated on its training digits, so its noise report is a real one)."""
from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest

import npukit
from npukit.models import zoo
from npukit.models.datasets import digits_split


@pytest.fixture(scope="session")
def mobilenet(tmp_path_factory):
    """(.npub path, CompiledModel) of MobileNetV2 at 96x96, width 0.5, on npu-m."""
    d = tmp_path_factory.mktemp("mobilenet")
    onnx.save(zoo.mobilenet_v2(size=96, width=0.5, num_classes=10), d / "mobilenet_v2.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # random calibration: the noise report is not the point
        prog = npukit.compile(d / "mobilenet_v2.onnx", "npu-m", random_samples=1)
    prog.save(d / "mobilenet_v2.npub")
    return d / "mobilenet_v2.npub", npukit.load(d / "mobilenet_v2.npub")


@pytest.fixture(scope="session")
def digits_calib(tmp_path_factory):
    path = tmp_path_factory.mktemp("digits") / "calib.npz"
    np.savez(path, x=digits_split(seed=0).x_train[:64][:, None])
    return path

"""The DS-CNN keyword spotter trained in the repo: int8 on the NPU loses at most 1 point."""


import numpy as np
import pytest




@pytest.fixture(scope="module")
def kws():
    from voice import kws
    if not kws.MODEL.is_file() or not kws.DATA.is_file():
        pytest.fail("examples/voice/kws_dscnn.onnx or kws_heldout.npz is missing")
    return kws


def test_int8_keyword_accuracy_within_one_point_of_float(kws):
    x, y, calib, labels = kws.load()
    assert len(labels) == 12 and len(y) > 500
    prog = kws.compile_for("npu-m", calib)
    float_acc = np.mean(kws.float_logits(kws.MODEL, x).argmax(1) == y)
    int8_acc = np.mean(kws.int8_logits(prog, x).argmax(1) == y)
    assert float_acc > 0.8, float_acc           # the trained model really spots keywords
    assert int8_acc >= float_acc - 0.01, (float_acc, int8_acc)

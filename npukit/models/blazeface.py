"""BlazeFace (MediaPipe's short-range "front" face detector, 128x128) pre- and post-processing:
image normalisation, SSD anchor generation and box decoding with non-maximum suppression.

The model outputs 896 anchors' regressors [1, 896, 16] (box centre offset, size, then six
key points, in input pixels) and classificators [1, 896, 1] (logits). Anchors follow
MediaPipe's SsdAnchorsCalculator for this model: strides 8, 16, 16, 16 at offset 0.5 with a
fixed anchor size, two anchors per cell per layer (16x16x2 + 8x8x6 = 896).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

INPUT_SIZE = 128
STRIDES = (8, 16, 16, 16)
ANCHORS_PER_LAYER = 2
SCORE_THRESHOLD = 0.75       # MediaPipe's min_score_thresh for the front model
NMS_IOU = 0.3


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]    # xmin, ymin, xmax, ymax; normalised to [0, 1]
    score: float


def anchors() -> np.ndarray:
    """[896, 2] anchor centres (x, y), normalised, in the model's output order."""
    out = []
    layer = 0
    while layer < len(STRIDES):
        stride, count = STRIDES[layer], 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:   # same-stride layers share a grid
            count += ANCHORS_PER_LAYER
            layer += 1
        grid = INPUT_SIZE // stride
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, count, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def preprocess(image: np.ndarray) -> np.ndarray:
    """An RGB image (HxWx3, uint8 or float in [0, 1]) -> the model input [1, 128, 128, 3] in [-1, 1]."""
    from skimage.transform import resize
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] < 3:
        raise InputError(f"BlazeFace needs an RGB image (H, W, 3); got shape {list(img.shape)}")
    img = img[..., :3].astype(np.float32)
    if np.issubdtype(np.asarray(image).dtype, np.integer):
        img /= 255.0
    small = resize(img, (INPUT_SIZE, INPUT_SIZE), anti_aliasing=True).astype(np.float32)
    return (small * 2.0 - 1.0)[None]


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def decode(regressors: np.ndarray, classificators: np.ndarray, threshold: float = SCORE_THRESHOLD,
           nms_iou: float = NMS_IOU) -> list[Detection]:
    """Face boxes above `threshold`, best first, after non-maximum suppression."""
    reg = np.asarray(regressors, np.float32).reshape(-1, 16)
    logits = np.asarray(classificators, np.float64).reshape(-1)
    anc = anchors()
    if reg.shape[0] != anc.shape[0] or logits.shape[0] != anc.shape[0]:
        raise InputError(f"expected {anc.shape[0]} anchors, got {reg.shape[0]} boxes and {logits.shape[0]} scores")
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -100.0, 100.0)))
    centre = reg[:, :2] / INPUT_SIZE + anc
    half = reg[:, 2:4] / INPUT_SIZE / 2.0
    boxes = np.concatenate([centre - half, centre + half], axis=1)
    keep: list[Detection] = []
    for i in np.argsort(-scores):
        if scores[i] < threshold:
            break
        x0, y0, x1, y1 = (float(v) for v in boxes[i])
        box = (x0, y0, x1, y1)
        if all(iou(box, d.box) <= nms_iou for d in keep):
            keep.append(Detection(box, float(scores[i])))
    return keep

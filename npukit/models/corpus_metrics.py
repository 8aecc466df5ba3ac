"""Task metrics of the model corpus: each compares the float model's outputs with the NPU's
on the same held-out inputs. `outs_f` and `outs_q` are lists (one per input) of
{output name: float array}.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

Outputs = list[dict[str, np.ndarray]]


@dataclass(frozen=True)
class Metric:
    """A task metric: its name (with unit), the function, which way is better, and (lower is
    better) the absolute slack of its regression bound."""

    name: str
    fn: Callable[[Outputs, Outputs], float]
    higher_is_better: bool = True
    slack: float = 0.05


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(a @ b / (na * nb))


def output_cosines(outs_f: Outputs, outs_q: Outputs, min_values: int = 8) -> dict[str, float]:
    """Cosine per output over all held-out inputs (each output's values concatenated); outputs
    with fewer than `min_values` values in all (a presence score, a flag) are left to the task
    metric: the cosine of two or three numbers near zero says nothing."""
    out = {}
    for k in outs_f[0]:
        a, b = np.concatenate([o[k].ravel() for o in outs_f]), np.concatenate([o[k].ravel() for o in outs_q])
        if a.size >= min_values:
            out[k] = cosine(a, b)
    return out


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def landmarks(output: str, stride: int) -> Metric:
    """Mean distance (model input pixels) between float and NPU landmarks; `output` holds
    (x, y, ...) groups of `stride` values in input pixels, as MediaPipe's landmark models do."""
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        return _mean([float(np.linalg.norm(f[output].reshape(-1, stride)[:, :2] - q[output].reshape(-1, stride)[:, :2],
                                           axis=1).mean()) for f, q in zip(outs_f, outs_q)])
    # slack: calibration's float sums round differently with the CPU's BLAS kernels, which moves
    # iris-landmark's error between 0.55 and 0.95 px (OpenBLAS's SkylakeX / Sandybridge / Haswell)
    return Metric(f"landmark error {output} (px)", fn, higher_is_better=False, slack=0.5)


def ssd_anchors(size: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """[n, 2] anchor centres (x, y) in [0, 1] as MediaPipe's SsdAnchorsCalculator makes them
    with fixed anchor size: layers of the same stride share a grid, `per_layer` anchors each."""
    out, layer = [], 0
    while layer < len(strides):
        stride, count = strides[layer], 0
        while layer < len(strides) and strides[layer] == stride:
            count += per_layer
            layer += 1
        grid = int(np.ceil(size / stride))
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        centres = np.stack([(xs + 0.5) / grid, (ys + 0.5) / grid], axis=-1).reshape(-1, 1, 2)
        out.append(np.repeat(centres, count, axis=1).reshape(-1, 2))
    return np.concatenate(out).astype(np.float32)


def _boxes(reg: np.ndarray, anchors: np.ndarray, size: int) -> np.ndarray:
    reg = reg.reshape(len(anchors), -1)
    centre, half = reg[:, :2] / size + anchors, reg[:, 2:4] / size / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of [n, 4] (x0, y0, x1, y1) boxes."""
    ix = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = ix * iy
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def ssd_boxes(regressors: str, scores: str, size: int, strides: tuple[int, ...], per_layer: int,
              at_float_anchors: int = 0) -> Metric:
    """IoU between the float model's best box and the NPU's best box, each at its own
    highest-scoring anchor (neighbouring anchors of one object give nearly the same box).
    With `at_float_anchors=k` (for inputs that hold no such object, where the best anchor is
    arbitrary), the mean IoU of float's and the NPU's boxes at float's k best anchors."""
    anchors = ssd_anchors(size, strides, per_layer)

    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        values = []
        for f, q in zip(outs_f, outs_q):
            bf, bq = _boxes(f[regressors], anchors, size), _boxes(q[regressors], anchors, size)
            if at_float_anchors:
                rows = np.argsort(-f[scores].reshape(-1))[:at_float_anchors]
                values.append(float(box_iou(bf[rows], bq[rows]).mean()))
            else:
                values.append(float(box_iou(bf[[int(np.argmax(f[scores]))]], bq[[int(np.argmax(q[scores]))]])[0]))
        return _mean(values)
    return Metric(f"box IoU at float's top-{at_float_anchors} anchors" if at_float_anchors else "best-box IoU", fn)


def _blended_top(boxes: np.ndarray, logits: np.ndarray, min_score: float, overlap: float) -> np.ndarray:
    """The first detection MediaPipe's weighted non-max suppression gives: the best-scoring
    anchor's box averaged, weighted by score, with every anchor that scores at least
    `min_score` (sigmoid of the clipped logit; the best anchor counts whatever it scores)
    and overlaps it by IoU above `overlap`."""
    scores = 1 / (1 + np.exp(-np.clip(np.asarray(logits, np.float64).reshape(-1), -100, 100)))
    top = int(np.argmax(scores))
    near = (box_iou(np.repeat(boxes[[top]], len(boxes), 0), boxes) > overlap) & (scores >= min_score)
    near[top] = True
    return (boxes[near] * scores[near, None]).sum(0, keepdims=True) / scores[near].sum()


def ssd_detection(regressors: str, scores: str, size: int, strides: tuple[int, ...], per_layer: int,
                  min_score: float = 0.5, overlap: float = 0.3) -> Metric:
    """IoU between the float model's and the NPU's top face detection, each as MediaPipe's
    face detection graphs make it (weighted non-max suppression: min score 0.5, IoU 0.3), so
    that two near-tied anchors of one face trading places moves it by what their boxes
    differ, weighted, not by the whole of it."""
    anchors = ssd_anchors(size, strides, per_layer)

    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        return _mean([float(box_iou(_blended_top(_boxes(f[regressors], anchors, size), f[scores], min_score, overlap),
                                    _blended_top(_boxes(q[regressors], anchors, size), q[scores], min_score, overlap))[0])
                      for f, q in zip(outs_f, outs_q)])
    return Metric("detection IoU (weighted NMS)", fn)


def map_iou(output: str, threshold: float) -> Metric:
    """IoU of the float and NPU maps binarised at `threshold` (DB text regions, masks)."""
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        values = []
        for f, q in zip(outs_f, outs_q):
            a, b = f[output] > threshold, q[output] > threshold
            union = np.logical_or(a, b).sum()
            values.append(float(np.logical_and(a, b).sum() / union) if union else 1.0)
        return _mean(values)
    return Metric(f"region IoU (>{threshold})", fn)


def ctc_decode(probs: np.ndarray, charset: list[str]) -> str:
    """Greedy CTC as PaddleOCR decodes: argmax per step, repeats merged, blank (0) dropped;
    class k > 0 is charset[k - 1]."""
    ids = np.asarray(probs).reshape(-1, probs.shape[-1]).argmax(axis=1)
    keep = [int(i) for j, i in enumerate(ids) if i != 0 and (j == 0 or i != ids[j - 1])]
    return "".join(charset[i - 1] if i - 1 < len(charset) else "" for i in keep)


def ctc_text(output: str, charset: Callable[[], list[str]]) -> Metric:
    """Fraction of inputs whose NPU text (greedy CTC with the wheel's dictionary, read when
    first needed) equals float's."""
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        chars = charset()
        return _mean([float(ctc_decode(f[output], chars) == ctc_decode(q[output], chars))
                      for f, q in zip(outs_f, outs_q)])
    return Metric("decoded text = float", fn)


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions from a to b."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def char_error_rate(output: str, charset: Callable[[], list[str]]) -> Metric:
    """Character error rate of the NPU's text against float's (greedy CTC as `ctc_text`): edit
    distance over the length of float's text, summed over the inputs."""
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        chars = charset()
        pairs = [(ctc_decode(f[output], chars), ctc_decode(q[output], chars)) for f, q in zip(outs_f, outs_q)]
        return sum(edit_distance(a, b) for a, b in pairs) / max(1, sum(len(a) for a, _ in pairs))
    return Metric("character error rate", fn, higher_is_better=False)


def argmax_agreement(output: str, top: int | None = None, score_axis: int = -1) -> Metric:
    """Fraction of positions where the NPU's best class equals float's. With `top`, only the
    `top` positions where float is most confident (e.g. a detector's best anchors)."""
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        values = []
        for f, q in zip(outs_f, outs_q):
            a, b = np.moveaxis(f[output], score_axis, -1), np.moveaxis(q[output], score_axis, -1)
            a, b = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
            rows = np.argsort(-a.max(axis=1))[:top] if top else np.arange(len(a))
            values.extend((a[rows].argmax(1) == b[rows].argmax(1)).astype(float).tolist())
        return _mean(values)
    return Metric("class agreement" + (f", top-{top}" if top else ""), fn)


def threshold_agreement(output: str, threshold: float) -> Metric:
    """Fraction of decisions (value > threshold) where float and NPU agree, over every value
    of every input (one per call for most detectors, one per window of a sequence)."""
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        return float(np.mean(np.concatenate([(f[output].ravel() > threshold) == (q[output].ravel() > threshold)
                                             for f, q in zip(outs_f, outs_q)])))
    return Metric(f"decision agreement (>{threshold})", fn)


def max_abs_diff(output: str) -> Metric:
    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        return float(max(np.abs(f[output] - q[output]).max() for f, q in zip(outs_f, outs_q)))
    return Metric("max abs difference", fn, higher_is_better=False)


def yolo_boxes(output: str, top: int) -> Metric:
    """Mean IoU of the NPU's boxes with float's at float's `top` most confident anchors of a
    YOLOv8 head ([1, 4 + classes, anchors]: centre x, y, width, height, then class scores)."""
    def xyxy(p: np.ndarray) -> np.ndarray:
        cx, cy, w, h = p[:4]
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)

    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        values = []
        for f, q in zip(outs_f, outs_q):
            pf, pq = f[output].reshape(f[output].shape[-2:]), q[output].reshape(q[output].shape[-2:])
            rows = np.argsort(-pf[4:].max(axis=0))[:top]
            values.append(float(box_iou(xyxy(pf)[rows], xyxy(pq)[rows]).mean()))
        return _mean(values)
    return Metric(f"box IoU at float's top-{top} anchors", fn)


def yolox_boxes(output: str, size: int, strides: tuple[int, ...], top: int) -> Metric:
    """Mean IoU of the NPU's boxes with float's at float's `top` highest-scoring anchors of a
    YOLOX head ([1, anchors, 5 + classes]: x, y offsets in the cell, log width and height in
    strides, objectness, class scores; anchors over a size/stride grid per stride in turn),
    decoded as YOLOX's demo does; the score is objectness x best class."""
    cells = [np.stack(np.meshgrid(np.arange(size // s), np.arange(size // s)), -1).reshape(-1, 2) for s in strides]
    grid = np.concatenate(cells).astype(np.float64)
    stride = np.concatenate([np.full((len(c), 1), s, np.float64) for c, s in zip(cells, strides)])

    def decode(p: np.ndarray) -> np.ndarray:
        p = p.reshape(-1, p.shape[-1]).astype(np.float64)
        xy, wh = (p[:, :2] + grid) * stride, np.exp(p[:, 2:4]) * stride
        return np.concatenate([xy - wh / 2, xy + wh / 2], axis=1)

    def fn(outs_f: Outputs, outs_q: Outputs) -> float:
        values = []
        for f, q in zip(outs_f, outs_q):
            pf = f[output].reshape(-1, f[output].shape[-1])
            rows = np.argsort(-(pf[:, 4] * pf[:, 5:].max(axis=1)))[:top]
            values.append(float(box_iou(decode(f[output])[rows], decode(q[output])[rows]).mean()))
        return _mean(values)
    return Metric(f"box IoU at float's top-{top} anchors", fn)

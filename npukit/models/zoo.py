"""Benchmark networks built from their published layer shapes, with seeded random weights.

NCHW float32 ONNX (opset 13) with BatchNormalization nodes, as framework exports have them.
Batch-norm statistics are taken from a random-normal probe batch, so each block's output has
roughly unit variance and int8 quantisation of these models is meaningful. Outputs are
logits (no softmax).

- `resnet18`, `mobilenet_v2`: torchvision's layer shapes (PyTorch padding).
- `resnet8`, `ds_cnn`, `mobilenet_v1`: MLPerf Tiny v1.x reference Keras models (Keras
  'same' padding, which is asymmetric for stride 2 on even sizes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from npukit.errors import InputError
from npukit.models.builder import GraphBuilder

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def save(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write `model` to `path` (parent folders created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def keras_same_pads(size: tuple[int, int], kernel: tuple[int, int], stride: int) -> tuple[int, int, int, int]:
    """ONNX pads (top, left, bottom, right) of TensorFlow's 'same' padding (extra at the end)."""
    pads_begin, pads_end = [], []
    for n, k in zip(size, kernel):
        out = -(-n // stride)
        total = max((out - 1) * stride + k - n, 0)
        pads_begin.append(total // 2)
        pads_end.append(total - total // 2)
    return pads_begin[0], pads_begin[1], pads_end[0], pads_end[1]


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if value <= 0:
            raise InputError(f"{name} must be positive, got {value}")


def _spatial(b: GraphBuilder, x: str) -> tuple[int, int]:
    shape = b.probe[x].shape
    return shape[2], shape[3]


def _conv_bn(b: GraphBuilder, x: str, out_ch: int, kernel: int, stride: int = 1,
             group: int = 1, pads: tuple[int, int, int, int] | None = None) -> str:
    return b.batch_norm(b.conv(x, out_ch, (kernel, kernel), stride, pads=pads, group=group))


def _classifier(b: GraphBuilder, x: str, num_classes: int, global_pool: bool = True) -> str:
    """(Global)AveragePool -> Flatten -> Gemm."""
    if global_pool:
        pooled = b.node("GlobalAveragePool", [x])
    else:
        pooled = b.node("AveragePool", [x], kernel_shape=list(_spatial(b, x)))
    return b.gemm(b.node("Flatten", [pooled], axis=1), num_classes)


# -- ResNet-18 (torchvision) -------------------------------------------------------------

def _basic_block(b: GraphBuilder, x: str, out_ch: int, stride: int) -> str:
    branch = b.relu(_conv_bn(b, x, out_ch, 3, stride))
    branch_conv = b.conv(branch, out_ch, (3, 3))
    if stride != 1 or b.probe[x].shape[1] != out_ch:
        shortcut = b.batch_norm(b.conv(x, out_ch, (1, 1), stride, pads=(0, 0, 0, 0)),
                                gamma=np.full(out_ch, 0.5**0.5))
    else:
        shortcut = x
    branch = b.batch_norm(branch_conv, gamma=b.residual_gamma(branch_conv, shortcut))
    return b.relu(b.node("Add", [branch, shortcut]))


def resnet18(size: int = 224, num_classes: int = 1000, seed: int = 0) -> onnx.ModelProto:
    """ResNet-18 (He et al. 2016; torchvision layout): input [1, 3, size, size]."""
    _check_positive(size=size, num_classes=num_classes)
    b = GraphBuilder(INPUT_NAME, (1, 3, size, size), seed)
    x = b.relu(_conv_bn(b, INPUT_NAME, 64, 7, 2))
    x = b.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    for stage, channels in enumerate((64, 128, 256, 512)):
        x = _basic_block(b, x, channels, 1 if stage == 0 else 2)
        x = _basic_block(b, x, channels, 1)
    return b.model(_classifier(b, x, num_classes), "resnet18", OUTPUT_NAME)


# -- MobileNetV2 (torchvision) -----------------------------------------------------------

_MOBILENET_V2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                        (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))  # (expand t, c, n, s)


def _make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _inverted_residual(b: GraphBuilder, x: str, out_ch: int, stride: int, expand: int) -> str:
    in_ch = b.probe[x].shape[1]
    hidden = in_ch * expand
    y = x if expand == 1 else b.relu6(_conv_bn(b, x, hidden, 1))
    y = b.relu6(_conv_bn(b, y, hidden, 3, stride, group=hidden))
    project = b.conv(y, out_ch, (1, 1), pads=(0, 0, 0, 0))
    if stride == 1 and in_ch == out_ch:
        y = b.batch_norm(project, gamma=b.residual_gamma(project, x))
        return b.node("Add", [y, x])
    return b.batch_norm(project)


def mobilenet_v2(size: int = 224, width: float = 1.0, num_classes: int = 1000,
                 seed: int = 0) -> onnx.ModelProto:
    """MobileNetV2 (Sandler et al. 2018; torchvision layout), ReLU6 as Clip(x, 0, 6)."""
    _check_positive(size=size, width=width, num_classes=num_classes)
    b = GraphBuilder(INPUT_NAME, (1, 3, size, size), seed)
    x = b.relu6(_conv_bn(b, INPUT_NAME, _make_divisible(32 * width), 3, 2))
    for expand, channels, repeats, stride in _MOBILENET_V2_STAGES:
        for i in range(repeats):
            x = _inverted_residual(b, x, _make_divisible(channels * width), stride if i == 0 else 1, expand)
    x = b.relu6(_conv_bn(b, x, _make_divisible(1280 * max(1.0, width)), 1))
    return b.model(_classifier(b, x, num_classes), "mobilenet_v2", OUTPUT_NAME)


# -- MLPerf Tiny: ResNet-8 (image classification, CIFAR-10) ------------------------------

def _tiny_resnet_stack(b: GraphBuilder, x: str, channels: int, stride: int) -> str:
    y = b.relu(_conv_bn(b, x, channels, 3, stride, pads=keras_same_pads(_spatial(b, x), (3, 3), stride)))
    branch_conv = b.conv(y, channels, (3, 3))
    if stride != 1:
        shortcut = b.conv(x, channels, (1, 1), stride, pads=(0, 0, 0, 0), bias=True)
        b.standardise_conv(shortcut, 0.5**0.5)
    else:
        shortcut = x
    branch = b.batch_norm(branch_conv, gamma=b.residual_gamma(branch_conv, shortcut))
    return b.relu(b.node("Add", [branch, shortcut]))


def resnet8(size: int = 32, num_classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    """MLPerf Tiny ResNet-8: conv16, three residual stacks (16, 32, 64), avg pool, dense."""
    _check_positive(size=size, num_classes=num_classes)
    b = GraphBuilder(INPUT_NAME, (1, 3, size, size), seed)
    x = b.relu(_conv_bn(b, INPUT_NAME, 16, 3))
    for channels, stride in ((16, 1), (32, 2), (64, 2)):
        x = _tiny_resnet_stack(b, x, channels, stride)
    return b.model(_classifier(b, x, num_classes, global_pool=False), "resnet8", OUTPUT_NAME)


# -- MLPerf Tiny: DS-CNN (keyword spotting, 49 frames x 10 MFCC) -------------------------

def ds_cnn(frames: int = 49, coefficients: int = 10, num_classes: int = 12,
           seed: int = 0) -> onnx.ModelProto:
    """MLPerf Tiny DS-CNN: conv 64 (10x4, stride 2), 4 x (depthwise 3x3, pointwise 64), pool, dense."""
    _check_positive(frames=frames, coefficients=coefficients, num_classes=num_classes)
    b = GraphBuilder(INPUT_NAME, (1, 1, frames, coefficients), seed)
    first = b.conv(INPUT_NAME, 64, (10, 4), 2, pads=keras_same_pads((frames, coefficients), (10, 4), 2))
    x = b.relu(b.batch_norm(first))
    for _ in range(4):
        x = b.relu(_conv_bn(b, x, 64, 3, group=64))
        x = b.relu(_conv_bn(b, x, 64, 1, pads=(0, 0, 0, 0)))
    return b.model(_classifier(b, x, num_classes, global_pool=False), "ds_cnn", OUTPUT_NAME)


# -- MLPerf Tiny: MobileNet-v1 (visual wake words, 96x96) --------------------------------

_MOBILENET_V1_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                        (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def mobilenet_v1(size: int = 96, alpha: float = 0.25, num_classes: int = 2,
                 seed: int = 0) -> onnx.ModelProto:
    """MLPerf Tiny MobileNet-v1 (width alpha): conv 3x3/2, 13 depthwise-separable blocks, ReLU."""
    _check_positive(size=size, alpha=alpha, num_classes=num_classes)
    b = GraphBuilder(INPUT_NAME, (1, 3, size, size), seed)
    x = b.relu(_conv_bn(b, INPUT_NAME, max(1, int(32 * alpha)), 3, 2,
                        pads=keras_same_pads((size, size), (3, 3), 2)))
    for channels, stride in _MOBILENET_V1_BLOCKS:
        in_ch = b.probe[x].shape[1]
        pads = keras_same_pads(_spatial(b, x), (3, 3), stride)
        x = b.relu(_conv_bn(b, x, in_ch, 3, stride, group=in_ch, pads=pads))
        x = b.relu(_conv_bn(b, x, max(1, int(channels * alpha)), 1, pads=(0, 0, 0, 0)))
    return b.model(_classifier(b, x, num_classes, global_pool=False), "mobilenet_v1", OUTPUT_NAME)


MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet18": resnet18,
    "mobilenet_v2": mobilenet_v2,
    "resnet8": resnet8,
    "ds_cnn": ds_cnn,
    "mobilenet_v1": mobilenet_v1,
}


def main(argv: list[str] | None = None) -> None:
    """`python -m npukit.models.zoo NAME -o OUT.onnx [--size N] [--seed S]`: write one model."""
    import argparse
    import inspect
    import sys
    ap = argparse.ArgumentParser(prog="python -m npukit.models.zoo", description="Write a benchmark network as ONNX.")
    ap.add_argument("name", choices=sorted(MODELS))
    ap.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    ap.add_argument("--size", type=int, help="input height and width (models with a square image input)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    args = ap.parse_args(argv)
    build = MODELS[args.name]
    kwargs: dict[str, int] = {"seed": args.seed}
    if args.size is not None:
        if "size" not in inspect.signature(build).parameters:
            ap.error(f"{args.name} has no --size")
        kwargs["size"] = args.size
    try:
        print(save(build(**kwargs), args.output))
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()

"""DEPTH_TO_SPACE / SPACE_TO_DEPTH (TFLite, ONNX) as RESHAPE -> TRANSPOSE -> RESHAPE steps whose
transposes are at most 4-D, so each lowers to one strided DMA (codegen/data.py).

The textbook form goes through a 6-D [N, H, W, b, b, C'] intermediate; merging the dims the
permutation keeps adjacent (N with H, the inner block column with the channels) leaves the
4-D swap [N*H, W, b, b*C'] <-> [N*H, b, W, b*C']. Pure data movement: codes and quantisation
pass through unchanged."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ModelError


@dataclass(frozen=True)
class Step:
    """Reshape the current tensor to `shape`, then transpose it by `perm`."""
    shape: tuple[int, ...]
    perm: tuple[int, ...]


def depth_space_plan(nhwc: tuple[int, ...], block: int, to_space: bool, crd: bool = False,
                     what: str = "") -> tuple[list[Step], tuple[int, ...]]:
    """The steps and the NHWC output shape of depth-to-space (`to_space`) or space-to-depth
    with block size `block`. Channels are ordered (block row, block column, channel) like
    TFLite and ONNX's DCR mode; `crd` (ONNX DepthToSpace mode CRD) orders them (channel, row,
    column)."""
    if len(nhwc) != 4 or block < 1:
        raise ModelError(f"{what}: needs a 4-D input and a positive block size, got {nhwc} and {block}")
    n, h, w, c = nhwc
    b = block
    if to_space:
        if c % (b * b):
            raise ModelError(f"{what}: {c} channels are not a multiple of block size {b} squared")
        cb = c // (b * b)
        steps = [Step((n * h * w, cb, b * b), (0, 2, 1))] if crd and cb > 1 else []
        steps.append(Step((n * h, w, b, b * cb), (0, 2, 1, 3)))
        return steps, (n, h * b, w * b, cb)
    if h % b or w % b:
        raise ModelError(f"{what}: spatial size {h}x{w} is not a multiple of block size {b}")
    return [Step((n * h // b, b, w // b, b * c), (0, 2, 1, 3))], (n, h // b, w // b, b * b * c)

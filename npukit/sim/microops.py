"""Micro-operations: the simple parts of bound instructions (copies, fills, int32 adds,
requantisation, depthwise tiles) as rows of an int64 table, so that a run of consecutive rows
executes in one compiled call (sim/interpreter.py) instead of one Python call each.

A row holds raw addresses into the machine's memory and into the scratch and constant buffers
the bound instruction keeps alive (`MicroOp.keep`). Every address range was checked when the
instruction was bound (Machine.view, Machine.strided), so the interpreter does not check again.
Operands the rows cannot express (overlapping copies, more than four axes, misaligned int32
data) stay Python actions; the builders return None for them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..isa.strided import merge_dims

WIDTH = 24
COPY, FILL, ADD32, REQUANT, DWCONV, PAIR = range(6)


@dataclass(frozen=True, eq=False)
class MicroOp:
    row: tuple[int, ...]
    keep: tuple = ()            # the arrays whose memory the row addresses

    def __post_init__(self):
        if len(self.row) > WIDTH:
            raise ValueError(f"micro-op row of {len(self.row)} > {WIDTH} values")


def address(a: np.ndarray) -> int:
    return int(a.__array_interface__["data"][0])


def _int32_ok(*arrays: np.ndarray) -> bool:
    return all(a.dtype.itemsize == 4 and a.flags.c_contiguous and address(a) % 4 == 0 for a in arrays)


def copy(src: np.ndarray, dst: np.ndarray, xor: int = 0) -> MicroOp | None:
    """dst[...] = src (each byte xor `xor`) for views of equal shape and item size, any strides:
    the byte pattern merged into at most four axes of one contiguous run each. None when it
    needs more axes or the two overlap (numpy's copy reads everything first; these rows do not)."""
    if src.shape != dst.shape or src.dtype.itemsize != dst.dtype.itemsize or np.may_share_memory(src, dst):
        return None
    if src.size == 0:
        return MicroOp((COPY, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), (src, dst))
    shape, s, d, run = merge_dims(src.shape, src.strides, dst.strides, src.dtype.itemsize)
    if len(shape) > 4:
        return None
    pad = 4 - len(shape)
    return MicroOp((COPY, address(src), address(dst), *[1] * pad, *shape, *[0] * pad, *s, *[0] * pad, *d, run,
                    xor & 0xFF), (src, dst))


def fill(dst: np.ndarray, value: int) -> MicroOp:
    """A contiguous uint8 block set to one byte value."""
    return MicroOp((FILL, address(dst), dst.size, value & 0xFF), (dst,))


def add32(src: np.ndarray, dst: np.ndarray) -> MicroOp | None:
    """dst += src over contiguous int32 arrays of one size (wrapping)."""
    if src.size != dst.size or not _int32_ok(src, dst) or np.may_share_memory(src, dst):
        return None
    return MicroOp((ADD32, address(src), address(dst), src.size), (src, dst))


def requant(acc: np.ndarray, params: np.ndarray, dst: np.ndarray, out_zp: int, act_min: int,
            act_max: int) -> MicroOp | None:
    """jit.requantize of int32 acc [n, k] with params int32 [3, k] (bias, multiplier, shift)
    into int8 dst [n, k] whose rows may be strided (columns contiguous)."""
    n, k = acc.shape
    if (not _int32_ok(acc, params) or dst.shape != (n, k) or dst.dtype != np.int8 or (k > 1 and dst.strides[1] != 1)
            or (n > 1 and dst.strides[0] < k)):
        return None
    return MicroOp((REQUANT, address(acc), n, k, address(params), address(dst), dst.strides[0] if n > 1 else k,
                    out_zp, act_min, act_max), (acc, params, dst))


def depthwise(x: np.ndarray, w: np.ndarray, params: np.ndarray, dst: np.ndarray, geometry: np.ndarray) -> MicroOp | None:
    """jit.depthwise_requant of one tile: x int8 [ih, iw, c], w int8 [kh, kw, k], params int32
    [3, k], dst int8 [oh*ow, k], all contiguous, geometry jit.GEOMETRY's 18 values."""
    if not (x.flags.c_contiguous and w.flags.c_contiguous and dst.flags.c_contiguous and _int32_ok(params)):
        return None
    return MicroOp((DWCONV, address(x), address(w), address(params), address(dst), *(int(v) for v in geometry)),
                   (x, w, params, dst))


def pair(a: np.ndarray, b: np.ndarray, lut: np.ndarray, dst: np.ndarray) -> MicroOp | None:
    """dst[i, j] = lut[a[i, j] << 8 | b[i, j]] (plans.PairTable's gather) over int8 [rows, cols]
    views with contiguous columns in a and dst; b's rows and columns may have any strides
    (0: broadcast). dst may be a or b itself, but not overlap them otherwise."""
    rows, cols = a.shape
    for x in (a, b):
        if np.may_share_memory(x, dst) and (address(x), x.strides) != (address(dst), dst.strides):
            return None
    if (b.shape != a.shape or dst.shape != a.shape or lut.size != 1 << 16 or not lut.flags.c_contiguous
            or (cols > 1 and (a.strides[1] != 1 or dst.strides[1] != 1))):
        return None
    return MicroOp((PAIR, address(a), address(b), address(lut), address(dst), rows, cols, a.strides[0],
                    b.strides[0], b.strides[1], dst.strides[0]), (a, b, lut, dst))


def table(ops: list[MicroOp]) -> np.ndarray:
    """The rows as one int64 [len, WIDTH] table (unused columns 0)."""
    out = np.zeros((len(ops), WIDTH), np.int64)
    for i, op in enumerate(ops):
        out[i, :len(op.row)] = op.row
    return out

"""Comparison and logic int8 kernels of the TFLite reference: EQUAL, NOT_EQUAL, GREATER,
GREATER_EQUAL, LESS, LESS_EQUAL (int8 operands, bool out) and LOGICAL_AND / OR / NOT (bool).

Booleans are bytes 0 / 1 on the NPU, unquantised. LiteRT's int8 comparison (ComparisonQuantized
+ reference_ops::ComparisonWithScaling) brings both operands to a common scale before comparing:
v = MultiplyByQuantizedMultiplierSmallerThanOneExp((q - zp) << 8, QuantizeMultiplier(s)), i.e.
the real value in units of 1/256, rounded; then compares the integers. So values closer than
about 1/256 compare equal, whatever the tensors' own resolution. LiteRT requires s < 1 (it
aborts otherwise); npukit extends the same arithmetic with a left shift.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from npukit.errors import InputError, UnsupportedOpError
from npukit.kernels import intmath
from npukit.kernels.kernels_vpu_eltwise import check_scale

PREDICATES = ("equal", "not_equal", "greater", "greater_equal", "less", "less_equal")
CONNECTIVES = ("and", "or", "xor")
COMPARISON_LEFT_SHIFT = 8
_NUMPY = {"equal": np.equal, "not_equal": np.not_equal, "greater": np.greater,
          "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
          "and": np.logical_and, "or": np.logical_or, "xor": np.logical_xor}
SWAPPED = {"equal": "equal", "not_equal": "not_equal", "greater": "less", "less": "greater",
           "greater_equal": "less_equal", "less_equal": "greater_equal"}


@dataclass(frozen=True)
class ComparisonParams:
    predicate: int            # index into PREDICATES
    input1_offset: int        # -zero point
    input1_multiplier: int
    input1_shift: int         # <= 0 within LiteRT's range (right shift)
    input2_offset: int
    input2_multiplier: int
    input2_shift: int

    def __post_init__(self):
        if not 0 <= self.predicate < len(PREDICATES):
            raise InputError(f"unknown comparison {self.predicate}")


@dataclass(frozen=True)
class LogicalParams:
    connective: int           # index into CONNECTIVES

    def __post_init__(self):
        if not 0 <= self.connective < len(CONNECTIVES):
            raise InputError(f"unknown connective {self.connective}")


def prepare_comparison(predicate: str, s1: float, zp1: int, s2: float, zp2: int) -> ComparisonParams:
    """ComparisonQuantized's Prepare: each scale (float32, as stored) to a Q31 multiplier."""
    if predicate not in PREDICATES:
        raise UnsupportedOpError(f"unknown comparison {predicate!r}")
    check_scale(s1, "input 1")
    check_scale(s2, "input 2")
    m1, sh1 = intmath.quantize_multiplier(float(np.float32(s1)))
    m2, sh2 = intmath.quantize_multiplier(float(np.float32(s2)))
    return ComparisonParams(PREDICATES.index(predicate), -int(zp1), m1, sh1, -int(zp2), m2, sh2)


def _scaled(q, offset: int, multiplier: int, shift: int) -> np.ndarray:
    v = (np.asarray(q, np.int64) + offset) * (1 << COMPARISON_LEFT_SHIFT)
    return intmath.multiply_by_quantized_multiplier(v, multiplier, shift)


def compare(a, b, p: ComparisonParams) -> np.ndarray:
    """The predicate on the rescaled operands (broadcasting): int8 0 / 1."""
    v1 = _scaled(a, p.input1_offset, p.input1_multiplier, p.input1_shift)
    v2 = _scaled(b, p.input2_offset, p.input2_multiplier, p.input2_shift)
    return _NUMPY[PREDICATES[p.predicate]](v1, v2).astype(np.int8)


def logical(a, b, p: LogicalParams) -> np.ndarray:
    """LOGICAL_AND / OR (and xor) on bytes: non-zero is true; int8 0 / 1."""
    fn = _NUMPY[CONNECTIVES[p.connective]]
    return fn(np.asarray(a) != 0, np.asarray(b) != 0).astype(np.int8)


def float_compare(fn: str, a, b) -> np.ndarray:
    """The float graph's predicate or connective (calibration and float reference)."""
    return _NUMPY[fn](a, b)


def logical_not_table() -> np.ndarray:
    """LOGICAL_NOT as a 256-entry table: 1 for the byte 0, else 0."""
    return (np.arange(-128, 128) == 0).astype(np.int8)

"""Comparison and logic kernels against LiteRT's reference kernels (BUILTIN_REF): every pair
of close codes under hypothesis-drawn scales (ties and the 1/256 rescaling grid), the
operand swap the lowering uses, and the logic connectives on all input pairs."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.errors import InputError
from npukit.kernels import kernels_vpu_compare as C
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import build_single_op, run_reference

scales = st.floats(min_value=-10.0, max_value=-0.01).map(lambda e: float(np.float32(2.0 ** e)))
zero_points = st.integers(-128, 127)
PAIRS = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128), indexing="ij")).reshape(2, 1, -1)


def litert(op: str, a, b, s1, z1, s2, z2) -> np.ndarray:
    model = build_single_op(op, [T("a", a.shape, scale=s1, zero_point=z1), T("b", b.shape, scale=s2, zero_point=z2)],
                            [T("y", a.shape, "bool")])
    return run_reference(model, [a, b])[0]


@settings(max_examples=25, deadline=None)
@given(op=st.sampled_from(["EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL"]),
       s1=scales, z1=zero_points, s2=scales, z2=zero_points, same=st.booleans())
def test_comparison_equals_litert_on_every_pair_of_codes(op, s1, z1, s2, z2, same):
    if same:
        s2, z2 = s1, z1
    a, b = PAIRS[0].astype(np.int8), PAIRS[1].astype(np.int8)
    p = C.prepare_comparison(op.lower(), s1, z1, s2, z2)
    want = litert(op, a, b, s1, z1, s2, z2)
    np.testing.assert_array_equal(C.compare(a, b, p).astype(bool), want)
    swapped = C.prepare_comparison(C.SWAPPED[op.lower()], s2, z2, s1, z1)       # b ? a, mirrored
    np.testing.assert_array_equal(C.compare(b, a, swapped).astype(bool), want)


@pytest.mark.parametrize("op,fn", [("LOGICAL_AND", "and"), ("LOGICAL_OR", "or")])
def test_logic_equals_litert(op, fn):
    a, b = np.array([[0, 0, 1, 1]], bool), np.array([[0, 1, 0, 1]], bool)
    model = build_single_op(op, [T("a", a.shape, "bool"), T("b", b.shape, "bool")], [T("y", a.shape, "bool")])
    got = C.logical(a.view(np.int8), b.view(np.int8), C.LogicalParams(C.CONNECTIVES.index(fn)))
    np.testing.assert_array_equal(got.astype(bool), run_reference(model, [a, b])[0])
    np.testing.assert_array_equal(C.logical_not_table()[np.array([0, 1]) + 128], [1, 0])


def test_coarse_grid_hand_worked():
    """Scale 1/1024: codes 0 and 1 are 1/1024 apart, below LiteRT's 1/256 grid: equal."""
    p = C.prepare_comparison("equal", 1 / 1024, 0, 1 / 1024, 0)
    assert C.compare(np.int8(0), np.int8(1), p) == 1 and C.compare(np.int8(0), np.int8(4), p) == 0


def test_corrupt_predicate_is_refused():
    with pytest.raises(InputError, match="comparison"):
        C.ComparisonParams(9, 0, 1 << 30, 0, 0, 1 << 30, 0)

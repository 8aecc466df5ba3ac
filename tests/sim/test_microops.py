"""Micro-op rows run by the compiled interpreter against numpy doing the same thing: strided
copies (merged axes, negative strides, xor), fills, wrapping int32 adds, and requantisation and
depthwise tiles against the compiled kernels' own entry points; builders refuse what rows
cannot express (overlap, five unmergeable axes)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from npukit.errors import BinaryError
from npukit.sim import jit
from npukit.sim import microops as mo
from npukit.sim.plan import Plan


def _run(*ops) -> None:
    plan = Plan([list(ops)], ["TEST"])
    plan.run(plan.program)


@settings(max_examples=60, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), item=st.sampled_from([1, 2, 4]),
       steps=st.lists(st.sampled_from([1, 2, -1, 3]), min_size=4, max_size=4), transpose=st.booleans(),
       xor=st.booleans(), seed=st.integers(0, 99))
def test_copy_equals_numpy(shape, item, steps, transpose, xor, seed):
    rng = np.random.default_rng(seed)
    dtype = {1: np.uint8, 2: np.int16, 4: np.int32}[item]
    big = rng.integers(0, 100, [n * abs(s) + 1 for n, s in zip(shape, steps)]).astype(dtype)
    src = big[tuple(slice(None, None, s) if s > 0 else slice(None, None, s) for s in steps[:len(shape)])]
    src = src[tuple(slice(0, n) for n in shape)]
    dst_full = np.zeros(shape[::-1] if transpose else shape, dtype)
    dst = dst_full.T if transpose else dst_full
    op = mo.copy(src.view(np.uint8) if xor and item == 1 else src, dst.view(np.uint8) if xor and item == 1 else dst,
                 0x80 if xor and item == 1 else 0)
    assert op is not None
    _run(op)
    want = src ^ 0x80 if xor and item == 1 else src
    np.testing.assert_array_equal(dst, want)


def test_copy_refuses_overlap_and_too_many_axes():
    mem = np.zeros(100, np.uint8)
    assert mo.copy(mem[:50], mem[10:60]) is None
    five = np.zeros((4, 4, 4, 4, 4), np.uint8)[::2, ::2, ::2, ::2, ::2]     # five axes that do not merge
    assert mo.copy(five, np.zeros(five.shape, np.uint8)) is None
    assert mo.copy(five[..., 0], np.zeros(five.shape[:-1], np.uint8)) is not None


def test_fill_and_wrapping_add():
    mem = np.arange(10, dtype=np.uint8)
    a = np.array([1, 2, -5, (1 << 31) - 1], np.int32)
    b = np.array([(1 << 31) - 1, -7, 5, 1], np.int32)
    want = (a.astype(np.int64) + b + (1 << 31)) % (1 << 32) - (1 << 31)
    _run(mo.fill(mem[2:7], 0x1FF), mo.add32(a, b))
    np.testing.assert_array_equal(mem, [0, 1, 255, 255, 255, 255, 255, 7, 8, 9])
    np.testing.assert_array_equal(b, want)


def test_requant_and_depthwise_rows_equal_the_kernels():
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 20), 1 << 20, (6, 5)).astype(np.int32)
    params = np.stack([rng.integers(-999, 999, 5), rng.integers(1 << 29, 1 << 31, 5),
                       rng.integers(-12, 2, 5)]).astype(np.int32)
    rows = np.zeros((6, 9), np.int8)
    want = np.zeros((6, 5), np.int8)
    jit.requantize(acc, *params, 3, -100, 120, want)
    _run(mo.requant(acc, params, rows[:, 2:7], 3, -100, 120))
    np.testing.assert_array_equal(rows[:, 2:7], want)
    assert not rows[:, :2].any() and not rows[:, 7:].any()

    x = rng.integers(-128, 128, (5, 6, 4)).astype(np.int8)
    w = rng.integers(-128, 128, (3, 3, 8)).astype(np.int8)
    p = np.stack([rng.integers(-999, 999, 8), rng.integers(1 << 29, 1 << 31, 8), rng.integers(-12, 0, 8)]).astype(np.int32)
    g = jit.geometry((5, 6), 4, 2, (3, 3), (2, 1), (1, 1), (1, 0), (3, 4), -3, 5, -128, 127)
    got, want = np.zeros((12, 8), np.int8), np.zeros((12, 8), np.int8)
    jit.depthwise_requant(x, w, *p, g, want)
    _run(mo.depthwise(x, w, p, got, g))
    np.testing.assert_array_equal(got, want)


def test_a_bad_shift_names_the_instruction():
    acc, rows = np.zeros((2, 3), np.int32), np.zeros((2, 3), np.int8)
    params = np.array([[0] * 3, [1 << 30] * 3, [0, 40, 0]], np.int32)
    plan = Plan([[mo.fill(np.zeros(4, np.uint8), 0)], [mo.requant(acc, params, rows, 0, -128, 127)]], ["FILL", "REQUANT"])
    with pytest.raises(BinaryError, match="REQUANT: .*shift"):
        plan.run(plan.program)


@pytest.mark.parametrize("b_strides", [(9, 1), (0, 1), (1, 0), (2, 18)])
def test_pair_gather_equals_numpy(b_strides):
    rng = np.random.default_rng(7)
    lut = rng.integers(-128, 128, 1 << 16).astype(np.int8)
    a = rng.integers(-128, 128, (4, 9)).astype(np.int8)
    mem = rng.integers(-128, 128, 200).astype(np.int8)
    b = np.lib.stride_tricks.as_strided(mem, (4, 9), b_strides)
    want = lut[(a.view(np.uint8).astype(np.int64) << 8) | b.view(np.uint8)]
    dst = np.zeros((4, 9), np.int8)
    _run(mo.pair(a, b, lut, dst))
    np.testing.assert_array_equal(dst, want)
    _run(mo.pair(a, b, lut, a))                 # in place over a
    np.testing.assert_array_equal(a, want)
    assert mo.pair(a, b, lut, mem[1:37].reshape(4, 9)) is None     # overlaps b shifted: refused

"""Strided access patterns (a DMA's shape, strides and element bytes): the bytes they touch
and their canonical form. Shared by the code generator, the simulator and its analyses."""
from __future__ import annotations


def extent(addr: int, shape, strides, elem: int) -> tuple[int, int]:
    """The byte range [lo, hi) a strided access touches (a superset when it has gaps)."""
    lo = hi = addr
    for s, n in zip(strides, shape):
        d = s * (n - 1)
        if d < 0:
            lo += d
        else:
            hi += d
    return lo, hi + elem


def merge_dims(shape, src, dst, elem: int = 1) -> tuple[list, list, list, int]:
    """Canonical strided block: drop unit dims, merge dims contiguous in both source and
    destination, and peel the trailing contiguous run off as the element size in bytes."""
    if shape == (1, 1, 1, 1):       # one contiguous run (most weight and parameter loads)
        return [], [], [], elem
    dims = [(n, s, d) for n, s, d in zip(shape, src, dst) if n != 1] + [(elem, 1, 1)]
    merged: list[list[int]] = []
    for n, s, d in dims:
        if n == 1:
            continue
        if merged and merged[-1][1] == s * n and merged[-1][2] == d * n:
            merged[-1] = [merged[-1][0] * n, s, d]
        else:
            merged.append([n, s, d])
    run = 1
    if merged and merged[-1][1] == 1 and merged[-1][2] == 1:
        run = merged.pop()[0]
    return [m[0] for m in merged], [m[1] for m in merged], [m[2] for m in merged], run

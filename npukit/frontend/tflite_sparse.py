"""TFLite sparse constants (a tensor with SparsityParameters, read by DENSIFY) made dense.

Follows TFLite's FormatConverter::SparseToDense: the traversal visits the expanded
dimensions (the original ones, then the block dimensions of `blockMap`) in
`traversalOrder`; a DENSE level enumerates `denseSize` positions, a SPARSE_CSR level the
indices between its segment bounds; each leaf takes the next stored value.
"""
from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as tfl

from ..errors import ModelError


def _vector(kind: int, vec) -> list[int]:
    if kind == tfl.SparseIndexVector.NONE or vec is None or vec.values is None:
        return []
    return [int(v) for v in vec.values]


def densify(values: np.ndarray, shape: tuple[int, ...], sp: tfl.SparsityParametersT, name: str) -> np.ndarray:
    """The dense array of `shape` that the sparse `values` with parameters `sp` encode."""
    order = [int(d) for d in (sp.traversalOrder if sp.traversalOrder is not None else [])]
    block_map = [int(d) for d in (sp.blockMap if sp.blockMap is not None else [])]
    meta = list(sp.dimMetadata or [])
    rank = len(shape)
    levels = rank + len(block_map)
    if len(order) != levels or len(meta) != levels or sorted(order) != list(range(levels)) \
            or any(d >= rank for d in order[:rank]):
        raise ModelError(f"tensor {name!r}: inconsistent sparsity parameters (traversal order {order}, "
                         f"{len(meta)} dimension records for rank {rank} and {len(block_map)} blocks)")
    block_size = [int(meta[rank + b].denseSize) for b in range(len(block_map))]
    dense = np.zeros(int(np.prod(shape, dtype=np.int64)), values.dtype)
    flat = values.reshape(-1)
    sizes = [int(m.denseSize) for m in meta]
    segments = [_vector(m.arraySegmentsType, m.arraySegments) for m in meta]
    indices = [_vector(m.arrayIndicesType, m.arrayIndices) for m in meta]
    # the traversal level by level, every path at once (a parent's children stay contiguous and
    # in order, so the paths come out in the depth-first order the values are stored in)
    prev = np.zeros(1, np.int64)                # each path's position in the previous level
    pos = np.zeros((levels, 1), np.int64)       # each path's coordinate at every level so far
    for level in range(levels):
        if meta[level].format == tfl.DimensionType.DENSE:
            n = sizes[level]
            counts = np.full(prev.size, n, np.int64)
            new = (prev[:, None] * n + np.arange(n)).reshape(-1)
            coord = np.tile(np.arange(n, dtype=np.int64), prev.size)
        else:
            seg, idx = np.asarray(segments[level], np.int64), np.asarray(indices[level], np.int64)
            if prev.size and prev.max() + 1 >= seg.size:
                raise ModelError(f"tensor {name!r}: sparse segment {int(prev.max())} is missing")
            lo, hi = seg[prev], seg[prev + 1]
            counts = np.maximum(hi - lo, 0)
            starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
            new = starts + np.arange(int(counts.sum()), dtype=np.int64)
            if new.size and new.max() >= idx.size:
                raise ModelError(f"tensor {name!r}: sparse index {int(new.max())} is missing")
            coord = idx[new]
        pos = np.repeat(pos, counts, axis=1)
        pos[level] = coord
        prev = new
    if pos.shape[1] != flat.size:
        raise ModelError(f"tensor {name!r}: {flat.size} sparse values stored, {pos.shape[1]} addressed")
    orig = np.zeros((rank, pos.shape[1]), np.int64)
    for lv in range(rank):
        orig[order[lv]] = pos[lv]
    for lv in range(rank, levels):
        b = order[lv] - rank
        orig[block_map[b]] = orig[block_map[b]] * block_size[b] + pos[lv]
    if ((orig < 0) | (orig >= np.asarray(shape, np.int64)[:, None])).any():
        raise ModelError(f"tensor {name!r}: sparse indices run outside the tensor")
    dense[np.ravel_multi_index(tuple(orig), shape)] = flat
    return dense.reshape(shape)

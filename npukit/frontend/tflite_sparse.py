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
    strides = np.cumprod((1,) + tuple(shape[:0:-1]))[::-1]
    pos = [0] * levels
    taken = 0

    def leaf() -> None:
        nonlocal taken
        orig = [0] * rank
        for lv in range(rank):
            orig[order[lv]] = pos[lv]
        for lv in range(rank, levels):
            b = order[lv] - rank
            orig[block_map[b]] = orig[block_map[b]] * block_size[b] + pos[lv]
        if taken >= flat.size or any(not 0 <= o < d for o, d in zip(orig, shape)):
            raise ModelError(f"tensor {name!r}: sparse indices run outside the tensor or its values")
        dense[int(np.dot(orig, strides))] = flat[taken]
        taken += 1

    def visit(level: int, prev: int) -> None:
        if level == levels:
            leaf()
            return
        if meta[level].format == tfl.DimensionType.DENSE:
            for i in range(sizes[level]):
                pos[level] = i
                visit(level + 1, prev * sizes[level] + i)
            return
        seg, idx = segments[level], indices[level]
        if prev + 1 >= len(seg):
            raise ModelError(f"tensor {name!r}: sparse segment {prev} is missing")
        for i in range(seg[prev], seg[prev + 1]):
            if i >= len(idx):
                raise ModelError(f"tensor {name!r}: sparse index {i} is missing")
            pos[level] = idx[i]
            visit(level + 1, i)

    visit(0, 0)
    if taken != flat.size:
        raise ModelError(f"tensor {name!r}: {flat.size} sparse values stored, {taken} addressed")
    return dense.reshape(shape)

"""Data movement of tensors of rank 5 and 6 (the reshapes, transposes, slices and concats of
attention blocks) runs on the NPU as loops of 4-D DMAs: the simulator's codes equal numpy's
transpose / slice / concat of the input codes (an independent oracle) and the integer
reference's, on random shapes, permutations and steps."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npukit.api import CompiledModel
from npukit.compiler import compile_graph
from npukit.measure import quantize_inputs
from npukit.ir.graph import (ConcatAttrs, DType, Graph, Node, Op, ReshapeAttrs, SliceAttrs, Tensor,
                             TransposeAttrs)
from npukit.isa import instructions as I

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402


@st.composite
def moves(draw):
    rank = draw(st.sampled_from([5, 6]))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    perm = tuple(draw(st.permutations(range(rank))))
    tshape = tuple(shape[p] for p in perm)
    begin, end, step = [], [], []
    for n in tshape:
        s = draw(st.integers(1, 3))
        b = draw(st.integers(0, n - 1))
        e = draw(st.integers(b + 1, n))
        begin.append(b), end.append(e), step.append(s)
    axis = draw(st.integers(0, rank - 1))
    return shape, perm, (tuple(begin), tuple(end), tuple(step)), axis, draw(st.integers(0, 999))


def moves_graph(shape, perm, sl, axis) -> Graph:
    """x -> TRANSPOSE -> SLICE -> RESHAPE (first two axes merged, a unit axis in front) -> y;
    CONCAT(transposed, transposed) -> z. (x also feeds output w, so that its TRANSPOSE stays
    in the graph rather than moving to the host's input quantisation.)"""
    tshape = tuple(shape[p] for p in perm)
    sshape = tuple(len(range(b, e, s)) for b, e, s in zip(*sl))
    rshape = (1, sshape[0] * sshape[1]) + sshape[2:]
    cshape = tuple(n * 2 if i == axis else n for i, n in enumerate(tshape))
    t = {name: Tensor(name, s, DType.F32) for name, s in
         (("x", shape), ("t", tshape), ("s", sshape), ("y", rshape), ("z", cshape), ("w", (-1,)))}
    t["w"] = Tensor("w", (int(np.prod(shape)),), DType.F32)
    nodes = (Node(Op.TRANSPOSE, "tr", ("x",), ("t",), TransposeAttrs(perm)),
             Node(Op.SLICE, "sl", ("t",), ("s",), SliceAttrs(*sl)),
             Node(Op.RESHAPE, "re", ("s",), ("y",), ReshapeAttrs(rshape)),
             Node(Op.CONCAT, "cat", ("t", "t"), ("z",), ConcatAttrs(axis)),
             Node(Op.RESHAPE, "flat", ("x",), ("w",), ReshapeAttrs(t["w"].shape)))
    return Graph(nodes, t, ("x",), ("y", "z", "w"))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=moves())
def test_rank5_and_6_moves_on_npu_equal_numpy_and_reference(case):
    shape, perm, sl, axis, seed = case
    rng = np.random.default_rng(seed)
    g = moves_graph(shape, perm, sl, axis)
    calib = {"x": rng.standard_normal((3,) + shape).astype(np.float32)}
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, sqnr=False)
    model = CompiledModel(prog, arch, qg)
    assert "concat" in {layer.op for layer in prog.layers}     # (a transpose of unit dims is a reshape)
    assert all(layer.target == "npu" for layer in prog.layers)
    feed = {"x": rng.standard_normal(shape).astype(np.float32)}
    q = quantize_inputs(qg, feed)
    got = model.run_int(q)
    t = q["x"].transpose(perm)
    s = t[tuple(slice(*a) for a in zip(*sl))]
    np.testing.assert_array_equal(got["y"], s.reshape(g.tensors["y"].shape))
    np.testing.assert_array_equal(got["z"], np.concatenate([t, t], axis))
    assert_sim_equals_reference(model, [feed])


def test_six_dims_that_stay_apart_loop_over_the_smallest_axes():
    """(5,3,1,4,2,0) on a 2x3x2x3x2x3 tensor keeps no pair of axes adjacent: 6 strided dims
    of 1-byte elements -> a loop over two of the smallest axes, 2 x 2 = 4 DMAs of 4-D; with the
    last axis kept last (0,2,4,1,3,5) its run of 3 bytes is the element: 5 dims, 2 DMAs."""
    for perm, count, elem in (((5, 3, 1, 4, 2, 0), 4, 1), ((0, 2, 4, 1, 3, 5), 2, 3)):
        assert _transpose_dmas((2, 3, 2, 3, 2, 3), perm) == [(elem, (2, 3, 3, 3) if elem == 1 else (2, 2, 3, 3))] * count


def _transpose_dmas(shape, perm) -> list:
    g = moves_graph(shape, perm, ((0,) * 6, tuple(shape[p] for p in perm), (1,) * 6), 0)
    calib = {"x": np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, small_arch(64, 64, 64, 16, 16, "ws"), calib, sqnr=False)
    tr = next(i for i, layer in enumerate(prog.layers) if layer.name == "tr")
    assert all(layer.target == "npu" for layer in prog.layers)
    return [(d.elem, tuple(sorted(d.shape))) for d in prog.instructions if isinstance(d, I.Dma) and d.layer == tr]

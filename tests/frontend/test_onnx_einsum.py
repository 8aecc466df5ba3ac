"""ONNX Einsum of an activation by a constant (DeepFilterNet's grouped linear
`btgi,gih->btgh`, a matmul, a channel projection) is a (grouped) 1 x 1 convolution on the NPU,
against onnxruntime; Einsums of two activations stay on the host."""
from __future__ import annotations


import numpy as np
import pytest
from onnx_testutil import assert_compiled_matches_onnxruntime, check_against_onnxruntime, model_bytes, node, ops

from npukit.ir.graph import Op

CASES = [("btgi,gih->btgh", (1, 5, 4, 6), (4, 6, 3), False), ("bij,jk->bik", (2, 5, 6), (6, 3), False),
         ("jk,bij->bki", (2, 5, 6), (6, 3), True), ("bhwc,cd->bdhw", (1, 3, 4, 5), (5, 2), False),
         ("btgi,gihz->btgh", (1, 5, 4, 6), (4, 6, 3, 2), False)]


def _model(eq, x_shape, w_shape, const_first, seed=0):
    w = np.random.default_rng(seed).standard_normal(w_shape).astype(np.float32)
    inputs = ["w", "x"] if const_first else ["x", "w"]
    return model_bytes([node("Einsum", inputs, ["y"], equation=eq)], {"x": x_shape}, ["y"], {"w": w})


@pytest.mark.parametrize("eq, x_shape, w_shape, const_first", CASES, ids=[c[0] for c in CASES])
def test_einsum_by_a_constant_import(eq, x_shape, w_shape, const_first):
    g = check_against_onnxruntime(_model(eq, x_shape, w_shape, const_first))
    assert Op.CONV2D in ops(g) and Op.HOST_FLOAT not in ops(g)


def test_einsum_of_two_activations_stays_on_the_host():
    mb = model_bytes([node("Einsum", ["x", "z"], ["y"], equation="bij,bjk->bik")],
                     {"x": (1, 3, 4), "z": (1, 4, 2)}, ["y"])
    g = check_against_onnxruntime(mb)
    assert ops(g) == [Op.HOST_FLOAT]


def test_grouped_linear_compiled(tmp_path):
    mb = _model("btgi,gih->btgh", (1, 6, 4, 8), (4, 8, 5), False, seed=1)
    path = tmp_path / "grouped.onnx"
    path.write_bytes(mb)
    xs = np.random.default_rng(2).uniform(-1, 1, (8, 1, 6, 4, 8)).astype(np.float32)
    assert_compiled_matches_onnxruntime(path, xs, k=3, steps=2.0)

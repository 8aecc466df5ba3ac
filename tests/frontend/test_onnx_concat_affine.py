"""A per-channel affine (a batch norm's Mul and Add) after a Concat of pieces with very
different ranges (DeepCut: embeddings beside conv features 100x wider) moves into the pieces,
so the Concat's one int8 scale is chosen for normalised values."""
from __future__ import annotations

import numpy as np
from onnx_testutil import assert_compiled_matches_onnxruntime, check_against_onnxruntime, model_bytes, node, ops

from npukit.ir.graph import Op

RNG = np.random.default_rng(5)


def concat_affine_model() -> bytes:
    wide = (RNG.standard_normal((4, 2)) * 200).astype(np.float32)
    scale = np.array([1.0, 0.8, 1.2, 0.9, 0.004, 0.003], np.float32).reshape(1, 1, 6)
    shift = (RNG.standard_normal((1, 1, 6)) * 0.1).astype(np.float32)
    nodes = [node("MatMul", ["x", "W"], ["wide"]),
             node("Concat", ["x", "wide"], ["cat"], axis=-1),
             node("Mul", ["cat", "s"], ["scaled"]),
             node("Add", ["scaled", "b"], ["y"])]
    return model_bytes(nodes, {"x": (1, 5, 4)}, ["y"], {"W": wide, "s": scale, "b": shift})


def test_affine_moves_into_the_concat_pieces():
    g = check_against_onnxruntime(concat_affine_model())
    assert ops(g)[-1] is Op.CONCAT        # the Mul and Add now run on each piece before it


def test_narrow_piece_keeps_its_codes(tmp_path):
    path = tmp_path / "concat_affine.onnx"
    path.write_bytes(concat_affine_model())
    xs = RNG.uniform(-2, 2, (9, 1, 5, 4)).astype(np.float32)
    assert_compiled_matches_onnxruntime(path, xs, k=8, steps=3.0)

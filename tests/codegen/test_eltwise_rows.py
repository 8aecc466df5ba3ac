"""Layers over more elements than ABUF holds at once, as BirdNET's [1, 144000] audio: an
element-wise layer whose one row (channels) is too long runs over rows of a shorter length
that divides the tensor (same-shape and scalar operands only: the layout does not matter to
them), a row that fits keeps its channels as rows; a maximum or minimum over too many rows
takes them in parts. Each equals LiteRT's reference kernel."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

import npukit
from npukit.isa import instructions as I
from npukit.testing.tflite_builder import TensorSpec, build_single_op, run_reference


def _model(op: str, n: int, b_shape) -> bytes:
    opts = {"ADD": tfl.AddOptionsT, "SUB": tfl.SubOptionsT, "MUL": tfl.MulOptionsT}[op]()
    return build_single_op(op, [TensorSpec("a", (1, n), "int8", 0.05, 3), TensorSpec("b", b_shape, "int8", 0.04, -5)],
                           [TensorSpec("y", (1, n), "int8", 0.08, 1)], opts)


@pytest.mark.parametrize("op, n, b_shape", [("ADD", 150_000, (1, 150_000)), ("SUB", 144_000, (1, 1)),
                                            ("MUL", 100_003, (1, 100_003))])
def test_a_row_too_long_for_abuf_runs_in_shorter_rows(tmp_path, op, n, b_shape):
    path = tmp_path / "long.tflite"
    path.write_bytes(model := _model(op, n, b_shape))
    prog = npukit.compile(path, "npu-s")
    assert all(layer.target == "npu" for layer in prog.program.layers)
    cols = {i.cols for i in prog.program.instructions if isinstance(i, I.Elementwise)}
    assert max(cols) < n and all(n % c == 0 for c in cols)
    rng = np.random.default_rng(n)
    a = rng.integers(-128, 128, (1, n)).astype(np.int8)
    b = rng.integers(-128, 128, b_shape).astype(np.int8)
    np.testing.assert_array_equal(prog.run({"a": a, "b": b})["y"], run_reference(model, [a, b])[0])


def test_a_row_that_fits_keeps_its_channels(tmp_path):
    path = tmp_path / "short.tflite"
    path.write_bytes(_model("ADD", 4000, (1, 4000)))
    prog = npukit.compile(path, "npu-s")
    assert {i.cols for i in prog.program.instructions if isinstance(i, I.Elementwise)} == {4000}


@pytest.mark.parametrize("op, shape, axes", [("REDUCE_MAX", (1, 150_000), [1]), ("REDUCE_MIN", (1, 150_000), [0, 1]),
                                             ("REDUCE_MAX", (2, 40_000, 3), [1])])
def test_a_maximum_over_more_rows_than_abuf_holds_runs_in_parts(tmp_path, op, shape, axes):
    """BirdNET's peak normalisation (REDUCE_MIN / MAX over its 144,000 samples): on npu-s each
    column's rows in parts, then the parts' extremes; equal to LiteRT."""
    out = tuple(1 if a in axes else d for a, d in enumerate(shape))
    model = build_single_op(op, [TensorSpec("x", shape, "int8", 0.05, 3),
                                 TensorSpec("axes", (len(axes),), "int32", data=np.array(axes, np.int32))],
                            [TensorSpec("y", out, "int8", 0.05, 3)], tfl.ReducerOptionsT(keepDims=True))
    path = tmp_path / "reduce.tflite"
    path.write_bytes(model)
    prog = npukit.compile(path, "npu-s")
    assert all(layer.target == "npu" for layer in prog.program.layers)
    means = [i for i in prog.program.instructions if isinstance(i, I.Mean)]
    assert len(means) > np.prod(out) and max(i.n for i in means) < np.prod([shape[a] for a in axes])
    rng = np.random.default_rng(len(shape))
    x = rng.integers(-100, 100, shape).astype(np.int8)
    x.flat[rng.integers(0, x.size)] = 127 if op == "REDUCE_MAX" else -128      # one extreme, anywhere
    np.testing.assert_array_equal(prog.run({"x": x})["y"], run_reference(model, [x])[0])

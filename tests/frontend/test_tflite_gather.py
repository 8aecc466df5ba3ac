"""TFLite GATHER of rows of a constant int8 table by integer ids runs on the NPU's indexed
GATHER instruction (no host segment) and equals LiteRT's reference GATHER (BUILTIN_REF)
byte for byte; an id outside the table stops both runs. A GATHER of an activation by constant
ids is a SLICE per run of consecutive ids and a CONCAT, also equal to LiteRT."""
from __future__ import annotations

import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as tfl

from npukit.api import compile as npu_compile
from npukit.errors import IndexRangeError
from npukit.isa import instructions as I
from npukit.testing.tflite_builder import TensorSpec as T
from npukit.testing.tflite_builder import build_single_op, run_reference


def _gather_model(rng, table_shape, ids_shape, ids_type: str, axis: int = 0) -> tuple[bytes, np.ndarray]:
    table = rng.integers(-128, 128, table_shape).astype(np.int8)
    scale, zp = float(np.float32(rng.uniform(0.01, 0.1))), int(rng.integers(-40, 41))
    options = tfl.GatherOptionsT()
    options.axis = axis
    out_shape = tuple(ids_shape) + tuple(table_shape[1:])
    model = build_single_op("GATHER", [T("table", table_shape, "int8", scale, zp, data=table),
                                       T("ids", ids_shape, ids_type)],
                            [T("y", out_shape, "int8", scale, zp)], options)
    return model, table


@pytest.mark.parametrize("table_shape,ids_shape,ids_type", [((50, 16), (1, 7), "int32"),
                                                            ((9, 3, 5), (2, 4), "int32"),
                                                            ((300, 33), (12,), "int64")])
def test_gather_rows_on_the_npu_equal_litert_reference(table_shape, ids_shape, ids_type, tmp_path):
    rng = np.random.default_rng(sum(table_shape))
    model, table = _gather_model(rng, table_shape, ids_shape, ids_type)
    path = tmp_path / "gather.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    assert prog.profile().host_ops == [] and not prog.program.host_segments
    assert [la.op for la in prog.program.layers] == ["gather"]
    assert sum(isinstance(i, I.Gather) for i in prog.program.instructions) == 1
    for _ in range(3):
        ids = rng.integers(0, table_shape[0], ids_shape).astype(ids_type)
        (want,) = run_reference(model, [ids])
        got = prog.run({prog.input_names[0]: ids})[prog.output_names[0]]
        assert got.dtype == want.dtype == np.int8 and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    # the table's codes travel unchanged: the output keeps its quantisation
    np.testing.assert_array_equal(prog.qgraph.tensors["table"].const_data, table)


def test_gather_id_outside_the_table_is_refused_like_litert(tmp_path):
    rng = np.random.default_rng(0)
    model, _ = _gather_model(rng, (6, 4), (1, 3), "int32")
    path = tmp_path / "gather.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    ids = np.array([[1, 6, 2]], np.int32)
    with pytest.raises(RuntimeError, match="gather index out of bounds"):
        run_reference(model, [ids])
    with pytest.raises(IndexRangeError):
        prog.run({prog.input_names[0]: ids})


def test_gather_along_another_axis_runs_on_the_host_equal_to_litert(tmp_path):
    rng = np.random.default_rng(1)
    table = rng.integers(-128, 128, (4, 5)).astype(np.int8)
    options = tfl.GatherOptionsT()
    options.axis = 1
    model = build_single_op("GATHER", [T("table", (4, 5), "int8", 0.05, 2, data=table), T("ids", (3,), "int32")],
                            [T("y", (4, 3), "int8", 0.05, 2)], options)
    path = tmp_path / "gather1.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    (host,) = prog.profile().host_ops
    assert "GATHER other than rows (axis 0)" in host["reason"]
    ids = np.array([4, 0, 2], np.int32)
    np.testing.assert_array_equal(prog.run({prog.input_names[0]: ids})[prog.output_names[0]],
                                  run_reference(model, [ids])[0])


def test_gather_of_a_float_table_runs_on_the_npu_within_half_a_step(tmp_path):
    """A float model's table is quantised by npukit at the output's scale: each gathered value
    within half a quantisation step of LiteRT's float GATHER."""
    rng = np.random.default_rng(2)
    table = rng.standard_normal((10, 4)).astype(np.float32)
    model = build_single_op("GATHER", [T("table", (10, 4), "float32", data=table), T("ids", (1, 6), "int32")],
                            [T("y", (1, 6, 4), "float32")], tfl.GatherOptionsT())
    path = tmp_path / "gather_f.tflite"
    path.write_bytes(model)
    every_row = (np.arange(24) % 10).reshape(4, 1, 6).astype(np.int32)     # the calibrated range holds the table
    prog = npu_compile(path, "npu-m", calibration={"ids": every_row})
    assert prog.profile().host_ops == [] and [la.op for la in prog.program.layers] == ["gather"]
    step = prog.qgraph.tensors["y"].quant.scale[0]
    for _ in range(3):
        ids = rng.integers(0, 10, (1, 6)).astype(np.int32)
        got = prog.run({prog.input_names[0]: ids})[prog.output_names[0]]
        assert np.abs(got - run_reference(model, [ids])[0]).max() <= step / 2 * (1 + 1e-5)


@pytest.mark.parametrize("x_shape, ids, axis", [((1, 40, 2), np.array([[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]), 1),
                                                ((1, 4, 4, 3), np.array([2, 1, 0]), 3),
                                                ((6, 5), np.array([5, -6, 0]) % 6, 0)])
def test_gather_of_an_activation_by_constant_ids_is_slices_on_the_npu(x_shape, ids, axis, tmp_path):
    """tf.signal.frame's overlapping frames (BirdNET, a log-mel front), a channel order: a
    SLICE per run of consecutive ids and a CONCAT, equal to LiteRT's reference GATHER."""
    rng = np.random.default_rng(ids.size)
    options = tfl.GatherOptionsT()
    options.axis = axis
    out_shape = x_shape[:axis] + ids.shape + x_shape[axis + 1:]
    model = build_single_op("GATHER", [T("x", x_shape, "int8", 0.05, 3), T("ids", ids.shape, "int32",
                                                                        data=ids.astype(np.int32))],
                            [T("y", out_shape, "int8", 0.05, 3)], options)
    path = tmp_path / "frames.tflite"
    path.write_bytes(model)
    prog = npu_compile(path, "npu-m")
    assert prog.profile().host_ops == [] and "slice" in [la.op for la in prog.program.layers]
    for _ in range(3):
        x = rng.integers(-128, 128, x_shape).astype(np.int8)
        np.testing.assert_array_equal(prog.run({"x": x})["y"], run_reference(model, [x])[0])

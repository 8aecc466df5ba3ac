"""ONNX Gather of activation rows by constant indices (a recurrent state's h and c rows, a
channel order, overlapping frames): indices forming an increasing slice import as SLICE +
RESHAPE (DMA on the NPU), others as a SLICE per run of consecutive indices and a CONCAT, equal
to onnxruntime; more runs than the limit stay an ONNX host node with its reason."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from npukit.frontend.onnx import load_onnx
from npukit.ir.graph import Op

from onnx_testutil import check_against_onnxruntime, model_bytes, node, ops


@pytest.mark.parametrize("idx, axis", [(np.int64(0), 0), (np.int64(-1), 0), (np.array([0, 2, 4]), 1),
                                       (np.array([[1], [3]]), 2), (np.array([3]), -1)])
def test_gather_of_a_slice_of_rows_is_data_movement(idx, axis):
    mb = model_bytes([node("Gather", ["state", "idx"], ["y"], axis=axis), node("Relu", ["y"], ["z"])],
                     {"state": (2, 5, 6)}, ["y", "z"], {"idx": np.asarray(idx, np.int64)})
    g = check_against_onnxruntime(mb)
    assert Op.HOST_FLOAT not in ops(g) and Op.SLICE in ops(g)


@pytest.mark.parametrize("idx, axis", [(np.array([2, 0]), 0), (np.array([2, 1, 0]), 1),     # BGR -> RGB
                                       (np.array([[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]), 1),  # frames
                                       (np.array([5, 0, 1, -1]), 2)])
def test_gather_of_rows_out_of_order_is_a_slice_per_run_and_a_concat(idx, axis):
    mb = model_bytes([node("Gather", ["state", "idx"], ["y"], axis=axis), node("Relu", ["y"], ["z"])],
                     {"state": (3, 8, 6)}, ["y", "z"], {"idx": np.asarray(idx, np.int64)})
    g = check_against_onnxruntime(mb)
    assert Op.HOST_FLOAT not in ops(g) and Op.CONCAT in ops(g)


def test_gather_in_more_runs_than_the_limit_stays_on_the_host():
    from npukit.frontend.index_runs import MAX_RUNS
    n = 2 * MAX_RUNS + 2
    mb = model_bytes([node("Gather", ["state", "idx"], ["y"], axis=1)], {"state": (1, n)}, ["y"],
                     {"idx": np.arange(n, dtype=np.int64)[::-1].copy()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = load_onnx(mb)
    host = [n for n in g.nodes if n.op is Op.HOST_FLOAT]
    assert len(host) == 1 and f"in more than {MAX_RUNS} runs" in host[0].attrs.reason
    check_against_onnxruntime(mb)


def test_silero_state_rows_compile_to_the_npu():
    """state [2, 1, 8] -> Gather 0 and Gather 1 (h and c) -> Add: every layer on the NPU, the
    simulator equal to the integer reference."""
    import sys
    from pathlib import Path
    from npukit.api import CompiledModel
    from npukit.compiler import compile_graph
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
    from test_sim_vs_reference import assert_sim_equals_reference, small_arch
    mb = model_bytes([node("Gather", ["state", "i0"], ["h"], axis=0), node("Gather", ["state", "i1"], ["c"], axis=0),
                      node("Add", ["h", "c"], ["y"])], {"state": (2, 1, 8)}, ["y"],
                     {"i0": np.int64(0), "i1": np.int64(1)})
    g = load_onnx(mb)
    rng = np.random.default_rng(0)
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, {"state": rng.standard_normal((4, 2, 1, 8)).astype(np.float32)},
                                    sqnr=False)
    assert all(layer.target == "npu" for layer in prog.layers)
    assert_sim_equals_reference(CompiledModel(prog, arch, qg),
                                [{"state": rng.standard_normal((2, 1, 8)).astype(np.float32)}])

"""Scales chosen by one compile reused at another token count: the same integer graph at the
same shape, the same per-tensor quantisation (and int16 choice) at another, the simulator
equal to the integer reference there; scales from another model or beside calibration data
are refused."""
from __future__ import annotations

import sys
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.api import CompiledModel
from npukit.compiler import compile_graph
from npukit.errors import InputError
from npukit.ir.graph import DType, Graph
from npukit.quant.scales import Scales

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import assert_sim_equals_reference, small_arch  # noqa: E402
from test_wide_graph import feed_forward_graph  # noqa: E402

ARCH = small_arch(64, 64, 64, 16, 16, "ws")


def _tokens(g: Graph, n: int) -> Graph:
    """The graph with `n` tokens (activations [1, n, C])."""
    return Graph(g.nodes, {k: t if t.is_const else replace(t, shape=(1, n, t.shape[-1])) for k, t in g.tensors.items()},
                 g.inputs, g.outputs)


def _compile(g: Graph, **how):
    chose: list = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, ARCH, sqnr=False, chose=chose, **how)
    return prog, qg, chose[0]


def test_scales_reused_at_the_same_and_another_token_count():
    rng = np.random.default_rng(0)
    g = feed_forward_graph(rng)
    calib = {"x": rng.standard_normal((6, 1, 6, 32)).astype(np.float32)}
    prog, qg, scales = _compile(g, calibration=calib, int16_below_db=80.0)
    assert scales.widenings and qg.tensors["f"].dtype is DType.I16       # the int16 choice is kept
    again, qg_again, kept = _compile(g, scales=scales)
    assert kept is scales
    assert again.instructions == prog.instructions and [r.image for r in again.regions] == [r.image for r in prog.regions]
    prog9, qg9, _ = _compile(_tokens(g, 9), scales=scales)
    acts = [n for n, t in qg.tensors.items() if not t.is_const]
    assert {n: (qg9.tensors[n].dtype, qg9.tensors[n].quant) for n in acts} == \
        {n: (qg.tensors[n].dtype, qg.tensors[n].quant) for n in acts}
    feeds = [{"x": rng.standard_normal((1, 9, 32)).astype(np.float32)} for _ in range(2)]
    assert_sim_equals_reference(CompiledModel(prog9, ARCH, qg9), feeds)


def test_scales_of_another_model_or_with_calibration_are_refused():
    rng = np.random.default_rng(1)
    g = feed_forward_graph(rng)
    _, _, scales = _compile(g, calibration={"x": rng.standard_normal((4, 1, 6, 32)).astype(np.float32)})
    partial = Scales({k: v for k, v in scales.ranges.items() if k != "h"}, scales.widenings)
    with pytest.raises(InputError, match="no range for tensor 'h'"):
        _compile(g, scales=partial)
    with pytest.raises(InputError, match="drop calibration and int16_below_db"):
        npukit.compile("model.onnx", calibration={"x": np.zeros((1, 1, 6, 32), np.float32)},
                       int16_below_db=30.0, scales=scales)


def test_for_arch_lowers_the_same_integer_graph_as_a_compile_for_that_arch():
    rng = np.random.default_rng(2)
    g = feed_forward_graph(rng)
    calib = {"x": rng.standard_normal((6, 1, 6, 32)).astype(np.float32)}
    prog, qg, scales = _compile(g, calibration=calib, int16_below_db=80.0)
    other = small_arch(4, 2, 2, 8, 8, "ws")
    moved = CompiledModel(prog, ARCH, qg, scales=scales).for_arch(other)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct, _, _ = compile_graph(g, other, calib, sqnr=False, int16_below_db=80.0)
    assert moved.qgraph is qg and moved.scales is scales and moved.arch is other
    assert moved.program.instructions == direct.instructions != prog.instructions
    assert [r.image for r in moved.program.regions] == [r.image for r in direct.regions]
    with pytest.raises(InputError, match="for_arch needs the integer graph"):
        CompiledModel(prog, ARCH).for_arch(other)

"""Embedding lookup (GATHER of rows of a constant table by integer ids) as the indexed GATHER
instruction: the simulator's rows equal numpy's take of the quantised table (an independent
oracle) and the integer reference's, for random tables, ids and id types; an id out of range
stops the run with the reference's one-line error; the timing charges one descriptor per row."""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from npukit.api import CompiledModel
from npukit.compiler import compile_graph
from npukit.cost import costs
from npukit.errors import IndexRangeError
from npukit.ir.graph import DType, EltwiseAttrs, GatherAttrs, Graph, Node, Op, Tensor
from npukit.isa import instructions as I
from npukit.sim.reference import run_reference

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
from test_sim_vs_reference import small_arch  # noqa: E402


def embedding_graph(rng, vocab: int, dim: int, n: int, ids: DType) -> Graph:
    """ids [1, n] -> GATHER(table [vocab, dim]) -> e -> e + e (an NPU consumer of the rows)."""
    table = rng.standard_normal((vocab, dim)).astype(np.float32)
    t = {"ids": Tensor("ids", (1, n), ids), "table": Tensor("table", table.shape, DType.F32, table),
         "e": Tensor("e", (1, n, dim), DType.F32), "y": Tensor("y", (1, n, dim), DType.F32)}
    nodes = (Node(Op.GATHER, "embed", ("table", "ids"), ("e",), GatherAttrs(0)),
             Node(Op.ADD, "twice", ("e", "e"), ("y",), EltwiseAttrs()))
    return Graph(nodes, t, ("ids",), ("e", "y"))


def _build(g: Graph, rng, vocab: int, n: int) -> CompiledModel:
    calib = {"ids": rng.integers(0, vocab, (4, 1, n)).astype(np.float32)}
    arch = small_arch(64, 64, 64, 16, 16, "ws")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog, qg, _ = compile_graph(g, arch, calib, sqnr=False)
    return CompiledModel(prog, arch, qg)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(vocab=st.integers(1, 300), dim=st.integers(1, 70), n=st.integers(1, 40),
       ids=st.sampled_from([DType.I32, DType.I64]), seed=st.integers(0, 999))
def test_gather_on_npu_equals_numpy_take_and_reference(vocab, dim, n, ids, seed):
    rng = np.random.default_rng(seed)
    g = embedding_graph(rng, vocab, dim, n, ids)
    model = _build(g, rng, vocab, n)
    assert all(layer.target == "npu" for layer in model.program.layers)
    gathers = [i for i in model.program.instructions if isinstance(i, I.Gather)]
    assert len(gathers) == 1 and gathers[0].n == n and gathers[0].id_bytes == ids.itemsize
    table = model.qgraph.tensors["table"].const_data
    for _ in range(2):
        feed = {"ids": rng.integers(0, vocab, (1, n)).astype(ids.np)}
        got = model.run_int(feed)
        np.testing.assert_array_equal(got["e"], np.take(table, feed["ids"], axis=0))
        want = run_reference(model.qgraph, feed)
        for name in want:
            np.testing.assert_array_equal(got[name], want[name])


def test_id_out_of_range_is_the_references_error():
    rng = np.random.default_rng(0)
    g = embedding_graph(rng, 10, 4, 3, DType.I64)
    model = _build(g, rng, 10, 3)
    for bad in ([[0, 10, 2]], [[-1, 0, 0]]):
        feed = {"ids": np.array(bad, np.int64)}
        with pytest.raises(IndexRangeError) as ref:
            run_reference(model.qgraph, feed)
        with pytest.raises(IndexRangeError) as sim:
            model.run_int(feed)
        assert str(sim.value) == str(ref.value) and "\n" not in str(sim.value)


def test_gather_timing_is_one_descriptor_per_row():
    """8 rows of 64 bytes from the weights region: the row phase costs at least 8 descriptors
    and at least the burst-rounded bytes over the region's bandwidth, after the ids arrive."""
    rng = np.random.default_rng(1)
    g = embedding_graph(rng, 100, 64, 8, DType.I32)
    model = _build(g, rng, 100, 8)
    i = next(k for k, ins in enumerate(model.program.instructions) if isinstance(ins, I.Gather))
    t = model.timeline()
    span = int(t.end[i] - t.start[i])
    assert span >= 8 * costs.DMA_SETUP_CYCLES
    w = model.arch.placement.weights
    assert span >= 8 * 64 / model.arch.region_bytes_per_cycle(w)


def test_gather_instruction_hand_worked_and_encoded():
    """Ids [2, 0, 2] (int32 at ABUF 0) over a 3-row table of 2 bytes at region 0, byte 8:
    rows (20, 21), (0, 1), (20, 21) land at ABUF 16; the instruction round-trips its encoding;
    a table reaching past its space is a binary error at lowering."""
    from npukit.isa.encoding import decode, disassemble, encode
    from npukit.errors import BinaryError
    from npukit.sim.semantics import Machine, execute
    m = Machine({I.ABUF: 64, I.WBUF: 16, I.ACC: 16}, [np.zeros(32, np.uint8)])
    m.view(I.ABUF, 0, (3,), np.int32)[...] = [2, 0, 2]
    m.view(I.REGION0, 8, (3, 2), np.uint8)[...] = [[0, 1], [10, 11], [20, 21]]
    ins = I.Gather(0, (), I.ABUF, 0, 3, 4, I.REGION0, 8, 3, 2, I.ABUF, 16)
    execute(m, ins)
    np.testing.assert_array_equal(m.view(I.ABUF, 16, (3, 2), np.uint8), [[20, 21], [0, 1], [20, 21]])
    assert decode(encode([ins])) == [ins] and "GATHER" in disassemble([ins], ["dram"])
    with pytest.raises(BinaryError, match="outside space"):
        execute(m, I.Gather(0, (), I.ABUF, 0, 3, 4, I.REGION0, 8, 30, 2, I.ABUF, 16))

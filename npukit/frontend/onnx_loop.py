"""An ONNX Loop whose trip count the input shapes fix, unrolled at import.

tf2onnx writes `tf.map_fn` over the batch and `while` loops over a static length as a Loop
with trip count INT64_MAX ("no limit") and a condition its body computes from shapes
(`i + 1 < n`). (A Loop whose body passes its condition through runs on the host, whole.)
With the input shapes given, the condition folds to a constant in every iteration, so the
importer runs the body once per iteration (as it inlines an If with a constant condition):
loop-carried values pass from one iteration to the next, scan outputs are stacked along a
new first axis (Unsqueeze, Concat), and each body node is converted as any other (NPU, or
the host with its reason). A condition that does not fold, more than `MAX_UNROLL`
iterations or a Loop that would produce no iteration leaves the Loop to the host, whole.
When no activation is carried from one iteration to the next (a map over the batch, as
`tf.map_fn` writes), each body value's copies, one per iteration, are tied (ir.ties,
frontend/unroll_ties): the quantiser gives them one range, observed over every iteration, so
that a row's result does not depend on where it sits in the batch. A recurrence keeps one
range per iteration: its iterations differ for good reason (a growing state), and tying
them measured worse (BENCHMARKS.md, 2026-12-08).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..kernels.host_float import loop_ends_on_condition
from .onnx_builder import Act, Builder
from .unroll_ties import Iteration, iteration, iteration_ties

MAX_UNROLL = 16


class NotUnrolled(Exception):
    """The Loop stays one host node."""


def _scalar(v) -> np.ndarray | None:
    return np.asarray(v) if isinstance(v, np.ndarray) and np.asarray(v).size == 1 else None


def unroll_loop(importer, node: onnx.NodeProto) -> None:
    """Run `node`'s body for each iteration; raises NotUnrolled (the builder rolled back by
    the caller) when the trip count is not fixed at import."""
    b: Builder = importer.b
    body = next((a.g for a in node.attribute if a.name == "body"), None)
    if not loop_ends_on_condition(node):      # (a fixed trip count with a passed-through condition: host)
        raise NotUnrolled
    if body is None or len(body.input) != len(node.input) or len(body.output) < len(node.input) - 1:
        raise NotUnrolled
    trips = _scalar(b.values.get(node.input[0])) if node.input[0] else np.array(np.iinfo(np.int64).max)
    cond = _scalar(b.values.get(node.input[1])) if len(node.input) > 1 and node.input[1] else np.array(True)
    if trips is None or cond is None:
        raise NotUnrolled
    n_carried = len(node.input) - 2
    carried = list(node.input[2:])
    scans: list[list[str]] = [[] for _ in body.output[1 + n_carried:]]
    i, tag = 0, node.name or node.output[0]
    copies: list[Iteration] = []
    recurrent = False
    while i < int(trips) and bool(cond.ravel()[0]):
        if i >= MAX_UNROLL:
            raise NotUnrolled
        b.values[body.input[0].name] = np.array(i, np.int64)
        b.values[body.input[1].name] = np.array(bool(cond.ravel()[0]))
        for vi, src in zip(body.input[2:], carried):
            b.alias(vi.name, src)
        start = len(b.nodes)
        importer.run_graph(body)
        copies.append(_iteration(b, body, start))
        cond = _scalar(b.values.get(body.output[0].name))
        if cond is None:
            raise NotUnrolled
        kept = [f"{tag}/iteration{i}/{out.name}" for out in body.output[1:]]     # this iteration's values
        for name, out in zip(kept, body.output[1:]):
            b.alias(name, out.name)
        carried = kept[:n_carried]
        recurrent = recurrent or any(isinstance(b.values.get(c), Act) for c in carried)
        for scan, name in zip(scans, kept[n_carried:]):
            scan.append(name)
        i += 1
    if i == 0 and scans:
        raise NotUnrolled           # (empty scan outputs: no activation to give)
    for dst, src in zip(node.output[:n_carried], carried):
        b.alias(dst, src)
    for dst, parts in zip(node.output[n_carried:], scans):
        _stack(importer, dst, parts)
    if not recurrent:
        b.ties.extend(iteration_ties(copies))


def _iteration(b: Builder, body: onnx.GraphProto, start: int) -> Iteration:
    """The iteration just run: the nodes emitted since `start`, the IR tensors of the carried
    values it read and of every value its nodes made."""
    names = [vi.name for vi in body.input[2:]] + [o for n in body.node for o in n.output]
    return iteration(b.nodes[start:], b.tensors,
                     {name: v.ir for name in names if isinstance(v := b.values.get(name), Act)})


def _stack(importer, dst: str, parts: list[str]) -> None:
    """dst = Concat(Unsqueeze(part, 0) for each part) along axis 0, converted as ONNX nodes."""
    b: Builder = importer.b
    axes = f"{dst}/stack_axis"
    b.values[axes] = np.array([0], np.int64)
    pieces = []
    for k, part in enumerate(parts):
        piece = f"{dst}/piece{k}"
        unsq = helper.make_node("Unsqueeze", [part, axes], [piece], name=piece) if b.opset >= 13 else \
            helper.make_node("Unsqueeze", [part], [piece], name=piece, axes=[0])
        importer.run_node(unsq)
        pieces.append(piece)
    if len(pieces) == 1:
        b.alias(dst, pieces[0])
        return
    importer.run_node(helper.make_node("Concat", pieces, [dst], name=f"{dst}/stack", axis=0))

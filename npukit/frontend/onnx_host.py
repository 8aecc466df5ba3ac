"""ONNX nodes imported as HOST_FLOAT nodes: run in float on the host by onnxruntime.

Any standard-domain operator the NPU cannot run takes this path, one IR node per ONNX node
carrying all its used outputs (so it runs once). `host_reason` says which nodes go before
any converter is tried: operators with no NPU kernel (no converter, or recurrent cells and
square roots the NPU has no table for), control flow over activations, and nodes that read
an integer or boolean tensor made on the host. A converter that refuses a node sends it
here too (the importer rolls its partial output back).
"""
from __future__ import annotations

import numpy as np
import onnx

from ..errors import ModelError, UnsupportedOpError
from ..ir.graph import DType, Op
from ..kernels.host_float import (DATA_SHAPED, HostFloatAttrs, loop_ends_on_condition, output_types, run_float,
                                  wrapper_model)
from .onnx_builder import Act, Builder
from .onnx_check import check_loop_trips
from .onnx_ml import ML_DOMAIN, ml_host_reason
from .index_runs import MAX_RUNS, index_runs
from .onnx_ops_tensor import rows_as_slice

CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
_HOST_PAD_MODES = (b"wrap",)     # reflect is an IR PAD (DMA with negative strides), edge slices and concatenations
_STANDARD = ("", "ai.onnx")


def check_domain(node: onnx.NodeProto, name: str) -> None:
    if node.domain not in _STANDARD + (ML_DOMAIN,):
        raise UnsupportedOpError(f"unsupported ONNX operator '{node.op_type}' from domain '{node.domain}' "
                                 f"(node '{name}'): only standard-domain and {ML_DOMAIN} operators can run on the host",
                                 node=name)


def host_reason(node: onnx.NodeProto, b: Builder, converters) -> str:
    """Why `node` runs on the host without trying a converter; '' to try the NPU."""
    op = node.op_type
    if node.domain == ML_DOMAIN:
        return ml_host_reason(node)
    if op in CONTROL_FLOW:
        ins = [b.values.get(n) for n in node.input if n]
        if op == "Scan":
            return "ONNX Scan over activations"
        return f"data-dependent {op}" if any(isinstance(v, Act) for v in ins[:2]) else f"ONNX {op} over activations"
    typed = [n for n in node.input if n in b.host_typed]
    if typed:
        return f"ONNX {op} reads {b.host_typed[typed[0]]} tensor {typed[0]!r} made on the host"
    odd = [n for n in node.input if n and isinstance(b.values.get(n), Act) and b.onnx_dtype(n) != np.float32]
    if odd and not _takes_as_is(node, odd, b):
        n, kind = odd[0], b.onnx_dtype(odd[0])
        if n in b.onnx_types and kind.kind in "iub":
            return f"ONNX {op} reads integer input {n!r} (bind it with input_values to fold it)"
        return f"ONNX {op} reads {kind} tensor {n!r}, which no NPU kernel of it takes"
    if op == "Gather":        # picking rows of an activation (a recurrent state)
        data, idx = b.values.get(node.input[0]), b.values.get(node.input[1]) if len(node.input) == 2 else None
        if isinstance(data, Act) and isinstance(idx, np.ndarray):
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0) % max(data.rank, 1)
            if rows_as_slice(idx, data.shape[axis]) is None and index_runs(idx, data.shape[axis]) is None:
                return f"no NPU kernel for Gather of activation rows out of range or in more than {MAX_RUNS} runs"
        return ""
    if op == "Pad":
        mode = next((a.s for a in node.attribute if a.name == "mode"), b"constant")
        return f"no NPU kernel for {mode.decode()} padding" if mode in _HOST_PAD_MODES else ""
    if op not in converters:
        return f"no NPU kernel for ONNX {op}"
    return ""


# ONNX operators the NPU runs on booleans as they are (bytes 0 / 1); the reshapes also move
# integer ids (towards a Gather) as they are
_RESHAPES = frozenset({"Identity", "Reshape", "Squeeze", "Unsqueeze", "Flatten"})
_BOOLEAN_OPS = _RESHAPES | {"And", "Or", "Xor", "Not", "Where", "Transpose"}


def _takes_as_is(node: onnx.NodeProto, odd: list[str], b: Builder) -> bool:
    """Whether the NPU kernel of `node` reads its non-float activation inputs `odd` as they are:
    booleans into logic, a select's condition or data movement; integer ids into a Gather of
    a constant table, or reshaped."""
    if node.op_type == "Gather":
        data, idx = b.values.get(node.input[0]), b.values.get(node.input[1]) if len(node.input) > 1 else None
        if node.input[:1] == odd and isinstance(data, Act) and isinstance(idx, np.ndarray) \
                and b.onnx_dtype(odd[0]) in (np.int32, np.int64) and node.output[0] not in b.graph_outputs:
            # ids picked by a constant index (a decoder's last token): one SLICE moves them as they are
            axis = next((a.i for a in node.attribute if a.name == "axis"), 0) % max(data.rank, 1)
            return rows_as_slice(idx, data.shape[axis]) is not None
        return node.input[1:2] == odd and isinstance(data, np.ndarray)
    if node.op_type in _RESHAPES and node.input[:1] == odd and b.onnx_dtype(odd[0]) in (np.int32, np.int64):
        # (int64 ids are held as int32: a graph output keeps its int64 through the host)
        return b.onnx_dtype(odd[0]) == np.int32 or node.output[0] not in b.graph_outputs
    to = next((a.i for a in node.attribute if a.name == "to"), None)
    if node.op_type == "Cast" and to in (onnx.TensorProto.FLOAT, onnx.TensorProto.BOOL):
        # a mask to 0.0 / 1.0 (a WHERE of two constants), or to bool again (nothing to do)
        return b.onnx_dtype(odd[0]) == np.bool_
    return node.op_type in _BOOLEAN_OPS and all(b.onnx_dtype(n) == np.bool_ for n in odd)


def _outer_names(graph: onnx.GraphProto, acc: set[str]) -> set[str]:
    """Names a subgraph (and its own subgraphs) read from enclosing scopes."""
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    for n in graph.node:
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                acc.update(x for x in _outer_names(a.g, set()) if x not in defined)
            for g in (a.graphs if a.type == onnx.AttributeProto.GRAPHS else ()):
                acc.update(x for x in _outer_names(g, set()) if x not in defined)
        acc.update(x for x in n.input if x and x not in defined)
        defined.update(n.output)
    acc.update(o.name for o in graph.output if o.name not in defined)
    return acc


def _example(shape: tuple[int, ...], dtype: np.dtype, rng: np.random.Generator, fill: int) -> np.ndarray:
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return np.full(shape, fill, dtype)


def _run_example(probe: HostFloatAttrs, operands: list[tuple[tuple[int, ...], np.dtype]]) -> list[np.ndarray]:
    """The node's outputs on example operands: normal floats, integers all 0 (safe indices)
    and, if the node fails on those (an integer division), all 1."""
    def run(fill: int) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        return run_float(probe, [_example(shape, d, rng, fill) for shape, d in operands])
    try:
        return run(0)
    except ModelError:
        if all(np.dtype(d).kind == "f" for _, d in operands):
            raise
    return run(1)


def emit_host(b: Builder, node: onnx.NodeProto, reason: str, used: set[str], ir_version: int,
              ml_opset: int = 1) -> None:
    """One HOST_FLOAT IR node for `node` with all its used outputs, each in ONNX layout. Float
    constants (weights) become IR constants; integer ones (pads, axes, indices) and what
    subgraphs read from outside go inside the wrapper model. `ml_opset`: the model's
    ai.onnx.ml opset, for a node of that domain."""
    name, op = b.source[-1], node.op_type
    if op in DATA_SHAPED:
        raise UnsupportedOpError(f"ONNX {op} (node '{name}') has an output shape that depends on the "
                                 "input data; npukit needs static shapes", node=name)
    if op == "Loop" and len(node.output) > len(node.input) - 2 and not b.is_const(node.input[0] or "-"):
        raise UnsupportedOpError(f"ONNX Loop (node '{name}') has scan outputs and a trip count known only at "
                                 "run time: their shape depends on the input data", node=name)
    if op == "Loop" and node.input and b.is_const(node.input[0]) and not loop_ends_on_condition(node):
        # (it runs once here, at compile time)
        trips = b.values[node.input[0]]
        assert isinstance(trips, np.ndarray)        # (a constant)
        check_loop_trips(int(trips.ravel()[0]), f"ONNX Loop (node '{name}')")
    ir_inputs: list[str] = []
    feeds: list[tuple[str, np.dtype]] = []
    consts: dict[str, np.ndarray] = {}
    wrapped = onnx.NodeProto()
    wrapped.CopyFrom(node)
    del wrapped.input[:]
    del wrapped.output[:]
    outer: set[str] = set()
    for a in node.attribute:
        for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs)):
            _outer_names(g, outer)
    operands = [(f"in{i}" if n else "", n) for i, n in enumerate(node.input)]
    wrapped.input.extend(local for local, _ in operands)
    operands += [(n, n) for n in sorted(outer - {""})]
    if any(src and b.values.get(src) is None for _, src in operands):
        missing = next(src for _, src in operands if src and b.values.get(src) is None)
        raise UnsupportedOpError(f"ONNX node '{name}' ({op}) reads {missing!r}, which is never defined", node=name)
    folds = not op.startswith(("Random", "Multinomial", "Bernoulli")) \
        and not any(isinstance(b.values[src], Act) for _, src in operands if src)
    node_name = "" if folds else b.claim_name()     # before the layout views of its operands
    for local, src in operands:
        if not src:
            continue
        value = b.values[src]
        if isinstance(value, np.ndarray) and (value.dtype.kind != "f" or local == src or folds):
            consts[local] = value
        elif isinstance(value, np.ndarray):
            ir_inputs.append(b.add_const(value, src))
            feeds.append((local, value.dtype))
        else:
            ir_inputs.append(b.onnx_layout(src))
            feeds.append((local, b.onnx_dtype(src)))
    keep = [k for k, out in enumerate(node.output) if out and out in used]
    wrapped.output.extend(f"out{k}" if out else "" for k, out in enumerate(node.output))
    text = wrapper_model(wrapped, feeds, consts, b.opset, ir_version, {ML_DOMAIN: ml_opset} if node.domain == ML_DOMAIN else None)
    probe = HostFloatAttrs(text, tuple(f"out{k}" for k in keep), (), (), op)
    try:
        results = _run_example(probe, [(b.tensors[t].shape, d) for t, (_, d) in zip(ir_inputs, feeds)])
    except ModelError as e:
        raise UnsupportedOpError(f"ONNX {op} (node '{name}', {reason}) fails in onnxruntime on example inputs "
                                 f"(bind the inputs it depends on with input values): {e}", node=name) from None
    if folds:
        for k, y in zip(keep, results):     # control flow over constants only: its values
            b.values[node.output[k]] = y
        return
    dtypes = []
    for k, y in zip(keep, results):
        if y.dtype.kind not in "fbiu" or y.dtype.name not in {d.value for d in DType}:
            raise UnsupportedOpError(f"ONNX {op} (node '{name}') output {node.output[k]!r} is {y.dtype}, "
                                     "which npukit cannot hold", node=name)
        dtypes.append(y.dtype.name)
    attrs = HostFloatAttrs(text, probe.outputs, tuple(tuple(int(d) for d in y.shape) for y in results),
                           tuple(dtypes), op, reason)
    names = []
    for k, y in zip(keep, results):
        out = node.output[k]
        float_4d = y.dtype == np.float32 and y.ndim == 4
        names.append(b.out_name(out, False) if float_4d else b.fresh(out, own=out))
    b.emit_outputs(Op.HOST_FLOAT, ir_inputs, attrs, names, [DType(d) for d in dtypes], node_name)
    for k, ir, d, raw in zip(keep, names, dtypes, output_types(attrs)):
        if d == "float32":
            b.set_onnx_layout(node.output[k], ir)
            if raw != np.float32:       # the next host node reads it in its own type again
                b.onnx_types[node.output[k]] = raw.name
        else:           # integer / boolean results stay in ONNX layout, for host nodes only
            b.values[node.output[k]] = Act(ir, b.tensors[ir].shape, False)
            b.host_typed[node.output[k]] = d

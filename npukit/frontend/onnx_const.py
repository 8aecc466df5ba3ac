"""Evaluation of ONNX nodes whose inputs are all known: shape subgraphs and constant math."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError


def attributes(node: onnx.NodeProto) -> dict:
    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def constant_value(node: onnx.NodeProto) -> np.ndarray:
    """The value of an ONNX Constant node."""
    for a in node.attribute:
        if a.name == "value":
            return numpy_helper.to_array(a.t)
        if a.name == "value_float":
            return np.array(a.f, np.float32)
        if a.name == "value_floats":
            return np.array(list(a.floats), np.float32)
        if a.name == "value_int":
            return np.array(a.i, np.int64)
        if a.name == "value_ints":
            return np.array(list(a.ints), np.int64)
    raise ModelError(f"Constant node {node.name!r} has no supported value attribute")


def _fast(node: onnx.NodeProto, ins: list[np.ndarray | None]) -> list[np.ndarray] | None:
    """numpy versions of the ops that dominate shape subgraphs (the rest use onnx.reference)."""
    op = node.op_type
    if op in ("Identity", "Dropout"):
        return [ins[0]]
    if op == "Unsqueeze" and len(ins) == 2:
        axes = sorted(int(a) % (ins[0].ndim + len(ins[1])) for a in ins[1].ravel())
        out = ins[0]
        for a in axes:
            out = np.expand_dims(out, a)
        return [out]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(x) for x in ins], axis=attributes(node)["axis"])]
    if op == "Gather":
        return [np.take(ins[0], ins[1], axis=attributes(node).get("axis", 0))]
    if op in ("Add", "Sub", "Mul") and ins[0].dtype == ins[1].dtype:
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op]
        return [fn(ins[0], ins[1])]
    return None


def evaluate(node: onnx.NodeProto, ins: list[np.ndarray | None], opsets) -> list[np.ndarray]:
    """Run one node on constant inputs (None = absent optional input)."""
    fast = _fast(node, ins)
    if fast is not None:
        return [np.asarray(v) for v in fast]
    from onnx.reference import ReferenceEvaluator  # imported lazily: it is slow to import
    names = [n if n else "" for n in node.input]
    graph_inputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(v.dtype), None)
                    for n, v in zip(names, ins) if n and v is not None]
    outputs = [helper.make_empty_tensor_value_info(n) for n in node.output if n]
    graph = helper.make_graph([node], "fold", graph_inputs, outputs)
    model = helper.make_model(graph, opset_imports=list(opsets))
    try:
        ref = ReferenceEvaluator(model)
        results = ref.run(None, {n: v for n, v in zip(names, ins) if n and v is not None})
    except Exception as e:  # noqa: BLE001 - any evaluator failure is a model problem here
        raise ModelError(f"cannot evaluate constant ONNX node {node.name!r} ({node.op_type}): {e}") from e
    return [np.asarray(r) for r in results]

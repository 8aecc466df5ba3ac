"""Evaluation of ONNX nodes whose inputs are all known: shape subgraphs and constant math."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ModelError, first_line


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


_FLOATS = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64}


def _fast(node: onnx.NodeProto, ins: list[np.ndarray | None]) -> list[np.ndarray] | None:
    """numpy versions of the ops that dominate shape subgraphs (the rest use onnx.reference)."""
    op = node.op_type
    if op in ("Identity", "Dropout") and ins[0] is not None:
        return [ins[0]]
    if any(x is None for x in ins):     # an absent optional input: onnx.reference decides
        return None
    arr = [x for x in ins if x is not None]
    if op == "Unsqueeze" and len(arr) == 2:
        axes = sorted(int(a) % (arr[0].ndim + len(arr[1])) for a in arr[1].ravel())
        out = arr[0]
        for a in axes:
            out = np.expand_dims(out, a)
        return [out]
    if op == "Concat":
        return [np.concatenate([np.atleast_1d(x) for x in arr], axis=attributes(node)["axis"])]
    if op == "Gather":
        return [np.take(arr[0], arr[1], axis=attributes(node).get("axis", 0))]
    if op == "Cast" and arr[0].dtype.kind in "biu" and arr[0].dtype.itemsize <= 2 \
            and attributes(node).get("to") in _FLOATS:      # exact: every such integer is a float
        return [arr[0].astype(_FLOATS[attributes(node)["to"]])]
    if op in ("Add", "Sub", "Mul") and arr[0].dtype == arr[1].dtype:
        fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op]
        return [fn(arr[0], arr[1])]
    return None


def _result_shape(node: onnx.NodeProto, ins: list[np.ndarray | None]) -> list[int] | None:
    """The result shape of the operators that make large arrays from small inputs, before
    they run (so that a bounded shape is refused before it is allocated)."""
    op, x = node.op_type, ins[0] if ins else None
    try:
        if op == "ConstantOfShape" and x is not None:
            return [int(d) for d in x.ravel()]
        if op == "Expand" and len(ins) > 1 and x is not None and ins[1] is not None:
            want = [int(d) for d in ins[1].ravel()]
            have = [1] * (len(want) - x.ndim) + list(x.shape)
            return [max(h, w) for h, w in zip(have, [1] * (len(have) - len(want)) + want)]
        if op == "Tile" and len(ins) > 1 and x is not None and ins[1] is not None:
            return [d * int(r) for d, r in zip(x.shape, ins[1].ravel())]
        if op == "Range" and len(ins) == 3 and all(v is not None for v in ins):
            start, limit, delta = (float(np.asarray(v).ravel()[0]) for v in ins)
            return [max(int(np.ceil((limit - start) / delta)), 0)] if delta else [0]
    except (OverflowError, ValueError, TypeError):
        raise ModelError(f"constant ONNX node {node.name!r} ({op}) has an impossible shape input") from None
    return None


def evaluate(node: onnx.NodeProto, ins: list[np.ndarray | None], opsets) -> list[np.ndarray]:
    """Run one node on constant inputs (None = absent optional input)."""
    shape = _result_shape(node, ins)
    if shape is not None:
        from .onnx_check import check_shape
        check_shape(shape, f"the result of constant ONNX node {node.name or node.output[0]!r} ({node.op_type})")
    try:
        fast = _fast(node, ins)
    except (ValueError, TypeError, IndexError, KeyError, AttributeError, np.exceptions.AxisError) as e:
        raise ModelError(first_line(f"cannot evaluate constant ONNX node {node.name!r} ({node.op_type}): {e}")) from None
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
        raise ModelError(first_line(f"cannot evaluate constant ONNX node {node.name!r} ({node.op_type}): {e}")) from e
    return [np.asarray(r) for r in results]

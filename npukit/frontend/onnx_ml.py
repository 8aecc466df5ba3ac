"""`ai.onnx.ml` operators of scikit-learn pipelines (skl2onnx) that are plain arithmetic,
rewritten as the standard operators they compute before import, so the NPU runs them:
- Scaler(x; offset, scale) -> Mul(Sub(x, offset), scale) inside the graph (offset and scale
  one value or one per feature). A Scaler of a model input (StandardScaler / MinMaxScaler in
  front of an MLP) stays and runs in float on the host: the raw features' ranges differ (a
  year beside a fraction), so one int8 input scale for them all would leave the narrow ones
  a few codes; its normalised output is what the NPU reads;
- LinearRegressor(x; coefficients, intercepts, targets), post_transform NONE ->
  Add(MatMul(x, coefficients^T), intercepts).
The other `ai.onnx.ml` operators (tree ensembles, SVMs, label encoders...) have no NPU form;
they run on the host by onnxruntime, each reported (`onnx_host`), where their outputs are
tensors.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .onnx_fuse import with_nodes

ML_DOMAIN = "ai.onnx.ml"


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _scaler(n: onnx.NodeProto, name: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]] | None:
    a = _attrs(n)
    offset = np.asarray(a.get("offset", [0.0]), np.float32)
    scale = np.asarray(a.get("scale", [1.0]), np.float32)
    inits = [numpy_helper.from_array(offset, f"{name}/offset"), numpy_helper.from_array(scale, f"{name}/scale")]
    return [helper.make_node("Sub", [n.input[0], inits[0].name], [f"{name}/centred"], name=f"{name}/sub"),
            helper.make_node("Mul", [f"{name}/centred", inits[1].name], [n.output[0]], name=name)], inits


def _linear_regressor(n: onnx.NodeProto, name: str) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]] | None:
    a = _attrs(n)
    if a.get("post_transform", b"NONE") not in (b"NONE", "NONE") or "coefficients" not in a:
        return None
    targets = int(a.get("targets", 1))
    coef = np.asarray(a["coefficients"], np.float32)
    if coef.size % targets:
        return None
    w = coef.reshape(targets, -1).T.copy()          # [features, targets]
    b = np.asarray(a.get("intercepts", [0.0] * targets), np.float32)
    if b.size != targets:
        return None
    inits = [numpy_helper.from_array(w, f"{name}/coefficients"), numpy_helper.from_array(b, f"{name}/intercepts")]
    return [helper.make_node("MatMul", [n.input[0], inits[0].name], [f"{name}/product"], name=f"{name}/matmul"),
            helper.make_node("Add", [f"{name}/product", inits[1].name], [n.output[0]], name=name)], inits


_REWRITES = {"Scaler": _scaler, "LinearRegressor": _linear_regressor}


def standard_ml(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of `model` with its arithmetic `ai.onnx.ml` operators as standard ones (the model
    itself when it has none)."""
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    changed = False
    inputs = {i.name for i in model.graph.input} - {i.name for i in model.graph.initializer}
    for k, n in enumerate(model.graph.node):
        rewrite = _REWRITES.get(n.op_type) if n.domain == ML_DOMAIN else None
        if n.op_type == "Scaler" and n.input and n.input[0] in inputs:
            rewrite = None
        made = rewrite(n, n.name or f"{n.op_type}_{k}") if rewrite is not None else None
        if made is None:
            nodes.append(n)
            continue
        nodes += made[0]
        inits += made[1]
        changed = True
    return with_nodes(model, nodes, inits) if changed else model


def ml_host_reason(node: onnx.NodeProto) -> str:
    """Why an `ai.onnx.ml` node left in the graph runs on the host."""
    if node.op_type == "Scaler":
        return (f"{ML_DOMAIN} Scaler of a model input runs in float (one int8 input scale for features of "
                "different ranges would leave the narrow ones few codes)")
    return f"no NPU kernel for {ML_DOMAIN} {node.op_type}"

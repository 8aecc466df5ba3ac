"""A binary's host segments: their typed records decoded, and checked at load.

A host segment is one node the host runs, written as a typed record (quant.records: its
kind, attribute and parameter fields) with its input and output tensors. `check_segments`
decodes every segment once at load: records of their kind, arrays in range, an embedded host
model that holds only what a host segment may run.
"""
from __future__ import annotations

import base64
from typing import Any

import numpy as np

from ..errors import BinaryError, ModelError
from ..ir.graph import Op, QParams
from ..isa.serial import from_data
from ..kernels import host_float
from ..quant.records import decode_node


def quant_of(t: dict[str, Any], blobs: list[np.ndarray]) -> QParams | None:
    return from_data(QParams | None, t["quant"], blobs, "quant")


def const_of(t: dict[str, Any], blobs: list[np.ndarray]) -> np.ndarray:
    return from_data(np.ndarray, t["data"], blobs, "data")


def check_segments(segments: list[dict], blobs: list) -> None:
    """Every host segment decodes to a node of its kind's records, its arrays in range; a
    HOST_FLOAT node's embedded ONNX graph holds only what a host segment may run."""
    for s, rec in enumerate(segments):
        try:
            node = decode_node(rec, blobs)
            for t in rec["inputs"] + rec["outputs"]:
                quant_of(t, blobs)
                if t.get("data") is not None:
                    const_of(t, blobs)
            if node.op is Op.HOST_FLOAT:
                host_float.check_model(node.attrs.onnx_model)
            if node.op is Op.HOST_TFLITE:
                check_tflite_model(node.attrs.model)
        except (BinaryError, ModelError) as e:
            raise BinaryError(f"corrupt binary: host segment {s}: {e}") from None
        except (LookupError, TypeError, ValueError, AttributeError) as e:
            raise BinaryError(f"corrupt binary: host segment {s}: malformed record ({type(e).__name__})") from None


def check_tflite_model(model: str) -> None:
    """Refuse an embedded flatbuffer (base64) beyond what npukit emits: one builtin operator in
    the main subgraph, the others only subgraphs that control flow calls, every index, option
    and quantisation parameter as the TFLite importer checks them. Without LiteRT installed
    nothing can run it, and running says so."""
    try:
        from ai_edge_litert import schema_py_generated as tfl
    except ImportError:
        return
    from ..frontend.tflite_check import check_model     # needs LiteRT's schema
    from ..frontend.tflite_read import parse_model
    try:
        data = base64.b64decode(model, validate=True)
    except ValueError:
        raise ModelError("host operator: not base64 TFLite data") from None
    flat = parse_model(data, "host operator")
    if len(flat.subgraphs[0].operators) != 1:
        raise ModelError("host operator: the flatbuffer's main subgraph must hold one operator")
    called = {int(getattr(op.builtinOptions, f)) for sg in flat.subgraphs for op in sg.operators
              if op.builtinOptions is not None
              for f in vars(op.builtinOptions) if f.endswith("SubgraphIndex")}
    if called != set(range(1, len(flat.subgraphs))):
        raise ModelError("host operator: the flatbuffer's other subgraphs must be those its "
                         "control flow calls")
    if any(max(c.builtinCode, c.deprecatedBuiltinCode) == tfl.BuiltinOperator.CUSTOM for c in flat.operatorCodes):
        raise ModelError("host operator: a custom TFLite operator is not one a host segment may run")
    check_model(flat, "host operator")

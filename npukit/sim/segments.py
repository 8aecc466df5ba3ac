"""A binary's host segments: the record classes they may name, and their checks at load.

A host segment is an IR node (attributes and kernel parameters included) encoded data-only
by isa.serial; decoding rebuilds only the classes `record_classes` lists, from the IR, the
kernels and the quantiser (the layers below). `check_segments` decodes every segment once at
load: a node of known records, arrays in range, an embedded host model that holds only what
a host segment may run.
"""
from __future__ import annotations

import base64
import dataclasses
import enum
import functools

import numpy as np

from ..errors import BinaryError, ModelError
from ..ir import graph as ir
from ..ir.graph import Node, Op, QParams
from ..isa.serial import from_data
from ..kernels import host_float, host_tflite, kernels_mxu, kernels_vpu
from ..quant import quantize


@functools.cache
def record_classes() -> dict[str, type]:
    """The classes a binary may name: every dataclass and enum of these modules."""
    out = {}
    for module in (ir, kernels_mxu, kernels_vpu, quantize):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and (dataclasses.is_dataclass(obj) or issubclass(obj, enum.Enum)):
                out[name] = obj
    return out


def decode(data, blobs: list[np.ndarray]):
    """A host segment's encoded value (a node, a QParams, an array)."""
    return from_data(data, blobs, record_classes())


def check_segments(segments: list[dict], blobs: list) -> None:
    """Every host segment decodes to a node of known record classes, its arrays in range; a
    HOST_FLOAT node's embedded ONNX graph holds only what a host segment may run."""
    for s, rec in enumerate(segments):
        try:
            node = decode(rec["node"], blobs)
            if not isinstance(node, Node):
                raise BinaryError(f"its node is a {type(node).__name__}")
            for t in rec["inputs"] + rec["outputs"]:
                if not isinstance(decode(t["quant"], blobs), (QParams, type(None))):
                    raise BinaryError("a tensor's quantisation is not a QParams record")
                if "data" in t and not isinstance(decode(t["data"], blobs), np.ndarray):
                    raise BinaryError("a constant is not an array")
            kinds = {Op.HOST_FLOAT: (host_float.HostFloatAttrs, host_float.HostFloatParams),
                     Op.HOST_TFLITE: (host_tflite.HostTfliteAttrs, host_tflite.HostTfliteParams)}
            if node.op in kinds:
                attrs, params = kinds[node.op]
                if not isinstance(node.attrs, attrs) or not isinstance(node.params, (params, type(None))):
                    raise BinaryError(f"its {node.op.value} node has attributes or parameters of another kind")
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
    one subgraph, every index, option and quantisation parameter as the TFLite importer checks
    them. Without LiteRT installed nothing can run it, and running says so."""
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
    if len(flat.subgraphs) != 1 or len(flat.subgraphs[0].operators) != 1:
        raise ModelError("host operator: the flatbuffer must hold one subgraph of one operator")
    if any(max(c.builtinCode, c.deprecatedBuiltinCode) == tfl.BuiltinOperator.CUSTOM for c in flat.operatorCodes):
        raise ModelError("host operator: a custom TFLite operator is not one a host segment may run")
    check_model(flat, "host operator")

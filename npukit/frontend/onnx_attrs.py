"""Attribute ranges of ONNX nodes, checked before a converter (or the host) uses them.

Only what the ONNX specification itself forbids is refused here, as a ModelError (onnxruntime
refuses such a node too, so it is no use sending it to the host): zero strides, a group that
does not divide the channels, an axis beyond the rank, a perm that is no permutation...
"""
from __future__ import annotations

import onnx

from ..errors import ModelError
from .onnx_const import attributes

_LARGEST = (1 << 31) - 1       # a window attribute (stride, pad, dilation...) beyond int32 is corrupt
_POOLS = frozenset({"MaxPool", "AveragePool", "LpPool"})
_AXIS_OPS = frozenset({"Softmax", "LogSoftmax", "Hardmax", "ArgMax", "ArgMin", "Concat", "Gather",
                       "GatherElements", "Split", "LayerNormalization", "CumSum"})
_AXES_OPS = frozenset({"Squeeze", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "ReduceProd",
                       "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"})


def attribute_error(node: onnx.NodeProto, attr: str, must: str, value=None) -> ModelError:
    """'attribute X of ONNX node N (Op) must be ...' as one line."""
    name = node.name or (node.output[0] if node.output else "?")
    got = "" if value is None else f", got {_short(value)}"
    return ModelError(f"attribute {attr!r} of ONNX node {name!r} ({node.op_type}) must be {must}{got}")


def _short(value) -> str:
    text = str(list(value) if isinstance(value, (list, tuple)) else value).replace("\n", " ")
    return text if len(text) <= 80 else text[:80] + "..."


def check_attributes(node: onnx.NodeProto, shapes: list[tuple[int, ...] | None]) -> None:
    """Refuse attributes out of their ONNX range; `shapes` are the input shapes (None: unknown)."""
    _check_kinds(node)
    at = attributes(node)
    op = node.op_type
    x = shapes[0] if shapes else None
    rank = len(x) if x is not None else None
    if op in ("Conv", "ConvTranspose") or op in _POOLS:
        _check_window(node, at, x, shapes[1] if len(shapes) > 1 else None)
    elif op == "Transpose" and "perm" in at and rank is not None:
        if sorted(at["perm"]) != list(range(rank)):
            raise attribute_error(node, "perm", f"a permutation of 0..{rank - 1}", at["perm"])
    elif op in ("DepthToSpace", "SpaceToDepth") and int(at.get("blocksize", 1)) < 1:
        raise attribute_error(node, "blocksize", "at least 1", at["blocksize"])
    elif op == "Flatten" and rank is not None and not -rank <= int(at.get("axis", 1)) <= rank:
        raise attribute_error(node, "axis", f"in [{-rank}, {rank}] for a rank-{rank} input", at["axis"])
    elif op == "Split" and any(int(s) < 0 for s in at.get("split", ())):
        raise attribute_error(node, "split", "non-negative sizes", at["split"])
    elif op == "LRN" and int(at.get("size", 1)) < 1:
        raise attribute_error(node, "size", "at least 1", at["size"])
    if rank is None:
        return
    out_rank = rank + (len(at.get("axes", ())) if op == "Unsqueeze" else 0)   # its axes index the output
    if op in _AXIS_OPS and "axis" in at:
        _check_axis(node, "axis", [at["axis"]], max(rank, 1))
    if (op in _AXES_OPS or op == "Unsqueeze") and "axes" in at:
        _check_axis(node, "axes", at["axes"], out_rank if op == "Unsqueeze" else rank)


def _check_kinds(node: onnx.NodeProto) -> None:
    """Each attribute the operator's schema declares has the declared kind (INT, INTS, ...)."""
    try:
        if node.domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type):
            return
        declared = onnx.defs.get_schema(node.op_type).attributes
    except (TypeError, UnicodeError):       # an operator name that is not text: no schema names it
        return
    for a in node.attribute:
        if a.name in declared and a.type != declared[a.name].type:
            want = onnx.AttributeProto.AttributeType.Name(declared[a.name].type)
            got = onnx.AttributeProto.AttributeType.Name(a.type) if a.type in onnx.AttributeProto.AttributeType.values() else a.type
            raise attribute_error(node, a.name, f"of kind {want}, not {got}")


def _check_axis(node, attr: str, axes, rank: int) -> None:
    for a in axes:
        if not -rank <= int(a) < rank:
            raise attribute_error(node, attr, f"in [{-rank}, {rank - 1}] for a rank-{rank} value",
                                  axes if attr == "axes" else a)


def _ints(node, at: dict, attr: str, count: int | None, least: int) -> list[int] | None:
    if attr not in at:
        return None
    values = [int(v) for v in at[attr]]
    if count is not None and len(values) != count:
        raise attribute_error(node, attr, f"{count} values", values)
    if any(v < least for v in values):
        raise attribute_error(node, attr, "positive" if least == 1 else "non-negative", values)
    if any(v > _LARGEST for v in values):
        raise attribute_error(node, attr, f"at most {_LARGEST}", values)
    return values


def _check_window(node, at: dict, x, w) -> None:
    """Conv, ConvTranspose and pooling: kernel, strides, dilations, pads and group."""
    op = node.op_type
    k = len(x) - 2 if x is not None and len(x) >= 3 else None
    kernel = _ints(node, at, "kernel_shape", k, 1)
    if op in _POOLS and kernel is None:
        raise attribute_error(node, "kernel_shape", "given")
    if op not in _POOLS and kernel is not None and w is not None and tuple(kernel) != tuple(w[2:]):
        raise attribute_error(node, "kernel_shape", f"the weight's spatial shape {list(w[2:])}", kernel)
    _ints(node, at, "strides", k, 1)
    dilations = _ints(node, at, "dilations", k, 1)
    spatial = x[2:] if x is not None else ()
    if dilations and (w is not None or kernel) and any(
            d > n and kk > 1 for d, n, kk in zip(dilations, spatial, kernel or (w[2:] if w is not None else ()))):
        raise attribute_error(node, "dilations", f"at most the input's size {list(spatial)}", dilations)
    pads = _ints(node, at, "pads", None if k is None else 2 * k, 0)
    _ints(node, at, "output_padding", k, 0)
    if op in _POOLS and pads and kernel and at.get("auto_pad", "NOTSET") == "NOTSET":
        n = len(kernel)
        if any(p >= kernel[i % n] for i, p in enumerate(pads[:2 * n])):
            raise attribute_error(node, "pads", f"smaller than the kernel {kernel}", pads)
    if op in _POOLS:
        return
    group = int(at.get("group", 1))
    if group < 1:
        raise attribute_error(node, "group", "at least 1", group)
    if x is None or w is None or len(x) < 2 or len(w) < 2:
        return
    c_in = x[1]
    if c_in % group:
        raise attribute_error(node, "group", f"a divisor of the {c_in} input channels", group)
    fits = w[1] * group == c_in and w[0] % group == 0 if op == "Conv" else w[0] == c_in
    if not fits:
        raise ModelError(f"ONNX node {node.name or node.output[0]!r} ({op}): weight shape {list(w)} does not fit "
                         f"{c_in} input channels in {group} group(s)")

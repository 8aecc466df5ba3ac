"""TFLite builtin operators the NPU has no kernel for, run on the host CPU by LiteRT.

A HOST_TFLITE node carries a one-operator TFLite flatbuffer (base64) built from the model's
own operator: its options, its tensors with their types and quantisation, its constants
embedded; control flow (IF, WHILE) with the subgraphs it calls after the main one. Its IR
inputs are the operator's activation inputs, in order of first use; its IR outputs are all
the used outputs of the operator (TOPK_V2's values and indices), computed by one run.

* From an int8 model the flatbuffer works on the model's integer tensors, so the node
  computes exactly what LiteRT computes for that operator in the whole model.
* From a float model (`float_model`) the flatbuffer is float: in the int8 program the node
  dequantises its inputs, runs in float and quantises its float outputs to their calibrated
  scales (as HOST_FLOAT does for ONNX).

LiteRT runs the operator with its reference kernels (BUILTIN_REF, the project's oracle); one
interpreter per node, built on first use and kept.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..errors import ModelError, UnsupportedOpError, first_line
from .host_float import dequantise_inputs, quantise_outputs


@dataclass(frozen=True)
class HostTfliteAttrs:
    model: str                     # base64 of a one-operator .tflite (+ called subgraphs); inputs = IR inputs
    op_name: str                   # the TFLite builtin, for reports
    outputs: tuple[int, ...]       # the operator outputs this IR node carries, in IR output order
    out_shapes: tuple[tuple[int, ...], ...]
    float_model: bool              # the flatbuffer runs in float (npukit quantised the model)
    reason: str                    # why it is not on the NPU
    work: tuple[tuple[tuple[str, int], ...], ...] = ()   # control flow: per alternative (an IF's
    # branches), (host op class, MACs or elements) of one run; the timing charges the costliest


@dataclass(frozen=True)
class HostTfliteParams:
    out_scale: tuple[float, ...]   # per output; unused for outputs that stay unquantised
    out_zero_point: tuple[int, ...]
    out_dtype: tuple[str, ...]     # the IR output types; float32: read only by host float nodes


@lru_cache(maxsize=256)
def interpreter(model: str):
    """A LiteRT interpreter for one node of the program."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_content=base64.b64decode(model),
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (RuntimeError, ValueError) as e:
        raise UnsupportedOpError(f"LiteRT cannot run this operator: {first_line(e)}") from None
    return it


def invoke(it, what: str) -> None:
    """Run the interpreter; LiteRT's kernel errors become one-line ModelErrors."""
    try:
        it.invoke()
    except (RuntimeError, ValueError) as e:
        raise ModelError(f"{what}: LiteRT failed: {first_line(e)}") from None


def run(attrs: HostTfliteAttrs, ins: list[np.ndarray]) -> list[np.ndarray]:
    """The operator on inputs of its own types (each cast to the type the flatbuffer declares),
    invoked once; returns the outputs this IR node carries."""
    it = interpreter(attrs.model)
    details = it.get_input_details()
    if len(details) != len(ins):
        raise ModelError(f"host {attrs.op_name} expects {len(details)} inputs, got {len(ins)}")
    try:
        for d, x in zip(details, ins):
            x = np.asarray(x)
            if x.dtype.kind == "f" and np.dtype(d["dtype"]).kind in "iub":
                x = np.round(x)
            it.set_tensor(d["index"], np.ascontiguousarray(x.astype(d["dtype"], copy=False)).reshape(d["shape"]))
    except (RuntimeError, ValueError) as e:      # LiteRT refusing the embedded operator's inputs
        raise ModelError(f"host {attrs.op_name}: LiteRT refuses its inputs: {first_line(e)}") from None
    invoke(it, f"host {attrs.op_name}")
    outs = it.get_output_details()
    if any(not 0 <= k < len(outs) for k in attrs.outputs):
        raise ModelError(f"host {attrs.op_name}: outputs {list(attrs.outputs)}, the operator has {len(outs)}")
    result = [it.get_tensor(outs[k]["index"]).copy() for k in attrs.outputs]
    for y, want in zip(result, attrs.out_shapes):
        if tuple(y.shape) != tuple(want):
            raise ModelError(f"host {attrs.op_name}: output shape {list(y.shape)} at run time, "
                             f"{list(want)} in the model (dynamic shapes are not supported)")
    return result


def run_float(attrs: HostTfliteAttrs, ins: list[np.ndarray]) -> list[np.ndarray]:
    """The float graph's view (calibration, float oracle): outputs as float32."""
    return [y.astype(np.float32) for y in run(attrs, ins)]


def run_quantised(attrs: HostTfliteAttrs, params: HostTfliteParams | None, ins: list[np.ndarray],
                  in_q: list) -> list[np.ndarray]:
    """The int8 program's view: an int8 model's node runs on its integers as they are; a float
    model's node dequantises its int8 inputs, runs in float and quantises its float outputs."""
    if not attrs.float_model:
        return run(attrs, ins)
    ys = run(attrs, dequantise_inputs(ins, in_q))
    if params is None:
        return ys
    return quantise_outputs(ys, params.out_scale, params.out_zero_point, params.out_dtype)

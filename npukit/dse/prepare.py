"""Parse and quantise each model once per sweep, in the explorer's own process.

The quantised graph does not depend on the arch, so one graph serves every design point of
its model (one per swept setting of the options quantisation reads, codegen.options.QUANT_OPTIONS).
It is shipped to each worker once (a pool initializer; one object in Ray's object store) and
kept there keyed by its hash: workers may be on other machines, which need neither the model
file nor the calibration data.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..npyio import load_npz
from .point import failure_reason, sha256_file
from .space import ModelSpec


@dataclass(frozen=True)
class PreparedModel:
    spec: ModelSpec
    model_hash: str          # file bytes + input shapes + calibration method (+ quantisation options)
    calibration_hash: str    # calibration file bytes, or "random"
    graph: object | None     # the quantised Graph, None when the model failed
    error: str = ""


def prepare_model(spec: ModelSpec, quant: tuple[tuple[str, str], ...] = ()) -> PreparedModel:
    """Hash and quantise one model with the non-default quantisation options `quant`; a model
    npukit cannot compile becomes an error stored with each of its points (the sweep goes on
    with the other models)."""
    if not spec.path.is_file():
        raise InputError(f"model file not found: {spec.path}")
    if spec.calibration is not None and not spec.calibration.is_file():
        raise InputError(f"calibration file not found: {spec.calibration}")
    file_hash = sha256_file(spec.path)
    calib_hash = sha256_file(spec.calibration) if spec.calibration else "random"
    key = [file_hash, spec.input_shapes, spec.method] + ([dict(quant)] if quant else [])
    model_hash = hashlib.sha256(json.dumps(key).encode()).hexdigest()
    try:
        graph = quantise(spec, quant)
    except Exception as exc:   # npukit's errors, and anything a malformed model still trips
        return PreparedModel(spec, model_hash, calib_hash, None, failure_reason(exc))
    return PreparedModel(spec, model_hash, calib_hash, graph)


def quantise(spec: ModelSpec, quant: tuple[tuple[str, Any], ...] = ()):
    """The compiler driver's stages up to the quantised graph (lowering is per point)."""
    from ..codegen.context import CompileOptions
    from ..compiler import load_model
    from ..ptq import quantise as quantise_graph
    g = load_model(spec.path, dict(spec.input_shapes) or None)
    calibration = _npz(spec.calibration) if spec.calibration else None
    try:
        return quantise_graph(g, calibration, spec.method, sqnr=False, options=CompileOptions(**dict(quant))).graph
    except InputError as exc:
        raise InputError(f"{spec.path.name}: {exc}") from None


def _npz(path) -> dict[str, np.ndarray]:
    return load_npz(path, f"calibration file {path}", InputError)

"""The compiler driver: model file -> Program, one stage after another.

    frontend -> ptq (optimise, calibrate, quantise, measure against float) -> lower to instructions
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .arch import Arch
from . import __version__
from .choices import HOST_POLICIES, HostPolicy, Method
from .codegen.context import CompileOptions
from .codegen.lower import lower_program
from .codegen.reuse import Reuse
from .errors import InputError, ModelError, UnsupportedOpError
from .frontend.signature import bind_values, read_signature
from .ir.graph import DType, Graph, Op
from .isa.program import Program
from .progress import stage
from .ptq import quantise, refuse_precision
from .threads import single_threaded
from .quant.quantize import attach_params, quantize_graph

if TYPE_CHECKING:
    from .measure import LayerSqnr
    from .quant.scales import Scales

MAX_HOST_RETRIES = 16       # nodes a later stage may send back to the host, one per import


def load_model(path: str | Path, input_shapes: dict[str, tuple[int, ...]] | None,
               input_values: dict | None = None, host_nodes=frozenset(), memo: dict | None = None) -> Graph:
    """Import a model file. `input_values` binds inputs to constants (ONNX; checked against the
    file's inputs, see frontend.signature); `host_nodes` names ONNX nodes to run in float on
    the host although a converter exists (a set of names, or a dict of name -> reason).
    `memo`: kept by the caller across imports of one ONNX file (frontend.onnx.load_onnx)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix not in (".onnx", ".tflite"):
        raise ModelError(f"unsupported model format {suffix!r} (expected .onnx or .tflite)")
    bound, names = None, frozenset(host_nodes or ())
    if input_values or names:
        sig = read_signature(path)
        bound = bind_values(sig, input_values or {})
        unknown = sorted(names - sig.node_names)
        if sig.format != "onnx" and names:
            raise InputError("host_nodes names ONNX nodes: a TFLite model has none")
        if unknown:
            raise InputError(f"host_nodes: {unknown[0]!r} is not a node of the model"
                             + (f" (nor {len(unknown) - 1} more)" if len(unknown) > 1 else ""))
    if suffix == ".onnx":
        from .frontend.onnx import load_onnx
        return load_onnx(path, input_shapes, bound, host_nodes or frozenset(), memo)
    try:        # LiteRT's flatbuffer schema: an optional dependency, loaded only for TFLite
        from .frontend.tflite import load_tflite
    except ImportError as e:
        raise InputError(f"TFLite models need ai-edge-litert ({e.name or e}): "
                         "pip install 'npukit[tflite]'") from None
    return load_tflite(path, input_shapes)


@dataclass(frozen=True)
class Placement:
    node: str                   # the IR layer
    op: str                     # its operator (a host-float node: the ONNX operator it runs)
    target: str                 # npu | host
    reason: str                 # why the host ("" on the NPU)
    source: tuple[str, ...]     # the model's own nodes it stands for

    def to_dict(self) -> dict:
        return {"node": self.node, "op": self.op, "target": self.target, "reason": self.reason,
                "source": list(self.source)}


def placements(g: Graph, arch: Arch | None = None, options: CompileOptions | None = None) -> tuple[Placement, ...]:
    """Where each layer of an imported graph would run on `arch`, decided as codegen.lower
    decides it (npu_support) on the graph lowering would see: optimised and quantised as the
    compiler does, with stand-in ranges and no integer params (placement depends on types and
    shapes, not on scales), so no calibration data is needed."""
    from .codegen.boundary import absorb_boundary_transposes
    from .codegen.partition import npu_support, onchip_bytes
    from .opt.pipeline import optimize
    from .quant.calibrate import Range
    from .quant.lstm_states import isolate_lstm_states
    from .quant.wide import magnitude_int16
    from .kernels import kernels_vpu as kv
    if g.is_quantised:
        qg = attach_params(g)
    else:
        g, copies, states = isolate_lstm_states(optimize(g))
        qg = quantize_graph(g, {n: Range(-1.0, 1.0) for n, t in g.tensors.items() if not t.is_const},
                            magnitude_int16(g) | states, params=False)
        ts = qg.tensors          # the LSTM state copies' requantisations (placement reads their params)
        qg = qg.with_nodes([n.with_(params=kv.prepare_requantize(ts[n.inputs[0]].qp.s, ts[n.inputs[0]].qp.zp,
                                                                 ts[n.outputs[0]].qp.s, ts[n.outputs[0]].qp.zp))
                            if n.outputs[0] in copies else n for n in qg.nodes])
    qg, _ = absorb_boundary_transposes(qg)
    work = 1 << 62 if arch is None else arch.abuf_bytes - onchip_bytes(arch, options)
    out = []
    for node in qg.nodes:
        reason = npu_support(qg, node, work, arch, options)
        op = node.attrs.op_type if node.op is Op.HOST_FLOAT else node.op.value
        out.append(Placement(node.name, op, "host" if reason else "npu", reason, tuple(node.source or (node.name,))))
    return tuple(out)


def refuse_host(found) -> None:
    """host="never": one error listing every operator that would leave the NPU."""
    host = [p for p in found if p.target == "host"]
    if host:
        raise UnsupportedOpError(f"host=never, but {len(host)} operator(s) would run on the host: "
                                 + "; ".join(f"{p.op} (node '{p.source[0]}'): {p.reason}" for p in host))


def compile_model(path: str | Path, arch: Arch, input_shapes: dict[str, tuple[int, ...]] | None = None,
                  calibration: dict[str, np.ndarray] | None = None, method: Method = "auto",
                  options: CompileOptions = CompileOptions(), sqnr: bool = True, random_samples: int = 8,
                  host: HostPolicy = "auto", input_values: dict | None = None, host_nodes=frozenset(),
                  int16_below_db: float | None = None, schedule=None,
                  used: list | None = None, scales: Scales | None = None,
                  chose: list | None = None, reuse: Reuse | None = None) -> tuple[Program, Graph, list[LayerSqnr]]:
    """A model file to a Program. host="auto": an ONNX node a later stage refuses
    (UnsupportedOpError naming it) is imported again to run on the host; "never": any
    operator off the NPU is an error listing them all. `schedule`: a pinned Schedule to
    lower with (None: the one the compiler makes); `used` receives the schedule lowered with.
    `scales`: quantise with these (see `quantise`); `chose` receives the Scales applied.
    `reuse`: weight streams and ratios shared with the caller's other compiles."""
    if host not in HOST_POLICIES:
        raise InputError(f"host must be one of {', '.join(HOST_POLICIES)}, not {host!r}")
    moved: dict[str, str] = {n: "kept on the host by host_nodes" for n in host_nodes}
    if host == "never":         # the NPU runs every LSTM / GRU it fits, whatever the estimates
        options = replace(options, recurrent_host="never")
    while True:
        stage("import")
        g = load_model(path, input_shapes, input_values, moved, reuse.imported if reuse is not None else None)
        if host == "never":
            refuse_host(placements(g, arch, options))
        try:
            program, qg, report = compile_graph(g, arch, calibration, method, options, str(path), sqnr,
                                                int16_below_db, random_samples, schedule, used, scales, chose,
                                                reuse)
        except UnsupportedOpError as e:
            if host == "never" and e.node is not None:
                raise UnsupportedOpError(f"host=never, but node '{e.node}' would run on the host: "
                                         f"refused on the NPU: {e}", node=e.node) from None
            if host == "never" or e.node is None or e.node in moved or g.is_quantised \
                    or Path(path).suffix.lower() != ".onnx" or len(moved) >= MAX_HOST_RETRIES + len(host_nodes):
                raise
            moved[e.node] = f"refused on the NPU: {e}"
            continue
        if host == "never":
            refuse_host([Placement(la.name, la.op, la.target, la.reason, tuple(la.nodes) or (la.name,))
                         for la in program.layers])
        return program, qg, report


def compile_graph(g: Graph, arch: Arch, calibration: dict[str, np.ndarray] | None = None,
                  method: Method = "auto", options: CompileOptions = CompileOptions(),
                  source: str = "", sqnr: bool = True, int16_below_db: float | None = None,
                  random_samples: int = 8, schedule=None, used: list | None = None,
                  scales: Scales | None = None, chose: list | None = None,
                  reuse: Reuse | None = None) -> tuple[Program, Graph, list[LayerSqnr]]:
    """The whole compiler: quantise (see `quantise`; with `scales` if given, `chose`
    receives those applied), then lower for `arch` (with `schedule` if given; `used`
    receives the schedule lowered with; `reuse` shares weight streams with other compiles)."""
    refuse_precision(g, options)
    if g.is_quantised:
        return compile_prequantised(g, arch, options, source, schedule=schedule, used=used, reuse=reuse)
    from .quant.precision import Rates
    with single_threaded():     # the float and integer reference runs' small products (npukit.threads)
        q = quantise(g, calibration, method, sqnr, int16_below_db, random_samples, options, scales=scales,
                     rates=Rates(arch.mxu.rows * arch.mxu.cols, arch.vpu.lanes),
                     known=reuse.quantised if reuse is not None else None)
    if chose is not None:
        chose.append(q.scales)
    meta = {"npukit_version": __version__, "model": source or g.name,
            "calibration": "scales of another compile" if scales is not None else q.method,
            "calibration_samples": q.samples, "random_calibration": calibration is None and scales is None,
            "options": options.__dict__,
            "float_io": {n: g.tensors[n].dtype is DType.F32 for n in list(g.inputs) + list(g.outputs)},
            "sqnr": [s.to_json() for s in q.sqnr]}
    if q.accuracy is not None:
        meta["accuracy"] = q.accuracy.to_json()
    stage("lower")
    program = lower_program(q.graph, arch, options, meta, schedule, used, reuse)
    if q.precision is not None:
        int8 = lower_program(q.int8, arch, options, {}, reuse=reuse) if q.int8 is not None else None
        from .report.widening import widening_cycles
        cost = widening_cycles(q.graph, program, int8, arch, frozenset(q.precision["tensors"]))
        program = replace(program, meta={**program.meta, "precision": {**q.precision, **cost}})
    return program, q.graph, q.sqnr


def compile_prequantised(g: Graph, arch: Arch, options: CompileOptions = CompileOptions(),
                         source: str = "", sqnr: bool = True, schedule=None,
                         used: list | None = None, reuse: Reuse | None = None) -> tuple[Program, Graph, list[LayerSqnr]]:
    """A model that arrives quantised (TFLite int8) keeps its scales: no optimisation passes
    that could change its integer results, no calibration; integer params only."""
    stage("lower")
    qg = attach_params(g)
    meta = {"npukit_version": __version__, "model": source or g.name, "calibration": "pre-quantised",
            "calibration_samples": 0, "random_calibration": False, "options": options.__dict__,
            "float_io": {n: n in g.float_io for n in list(g.inputs) + list(g.outputs)},
            "stateful": sorted(g.variables), "sqnr": []}
    return lower_program(qg, arch, options, meta, schedule, used, reuse), qg, []

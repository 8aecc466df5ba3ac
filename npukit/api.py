"""The Python API: compile a model, run it on the simulated NPU, profile it, save and load it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .arch import Arch, load_arch
from .codegen.context import CompileOptions
from .codegen.options import options_from
from .errors import BinaryError, InputError, ModelError, ScheduleError
from .isa import instructions as I
from .isa.encoding import disassemble
from .isa.program import Program
from .quant import kernels_vpu as kv
from .report.info import ModelInfo
from .report.profile import Profile, build_profile
from .sim.functional import Simulator, check_feeds
from .sim.timing import simulate


def _arch(arch: str | Path | Arch) -> Arch:
    return arch if isinstance(arch, Arch) else load_arch(arch)


class CompiledModel:
    """A compiled program bound to its architecture."""

    def __init__(self, program: Program, arch: Arch, qgraph=None, sqnr=None):
        self.program, self.arch = program, arch
        self.qgraph, self.sqnr = qgraph, sqnr or []
        self._sim = Simulator(program, {I.ABUF: arch.abuf_bytes, I.WBUF: arch.wbuf_bytes, I.ACC: arch.acc_bytes})
        self._profile: Profile | None = None

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.program.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.program.outputs]

    def run_int(self, feeds: dict[str, np.ndarray], order: list[int] | None = None) -> dict[str, np.ndarray]:
        """Run on the NPU's own integer tensors (no boundary conversion)."""
        return self._sim.run(feeds, order)

    def reset_state(self) -> None:
        """Restart a stateful (streaming) model: its variables return to their initial values."""
        self._sim.reset()

    def _ints(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .quant import jit      # numba loads on the first run, not on import
        arrays = check_feeds(self.program.inputs, feeds)
        ints = {}
        for t in self.program.inputs:
            x = arrays[t.name]
            ints[t.name] = jit.quantize(x, t.scale, t.zero_point, np.dtype(t.dtype)) \
                if t.is_float and t.dtype != "float32" else x.astype(t.dtype)
        return ints

    def seconds_by_kind(self, feeds: dict[str, np.ndarray]) -> dict[str, tuple[int, float]]:
        """Profile one simulated inference: {instruction kind: (count, seconds)}."""
        return self._sim.seconds_by_kind(self._ints(feeds))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference. Float models take and return float32; int models their own types."""
        out = self._sim.run(self._ints(feeds))
        return {t.name: kv.dequantize(out[t.name], t.scale, t.zero_point) if t.is_float and t.dtype != "float32" else out[t.name]
                for t in self.program.outputs}

    def profile(self) -> Profile:
        if self._profile is None:
            self._profile = build_profile(self.program, self.arch, simulate(self.program, self.arch))
        return self._profile

    def timeline(self):
        return simulate(self.program, self.arch)

    def _title(self) -> str:
        return f"{Path(str(self.program.meta.get('model', 'model'))).name} on {self.arch.name}"

    def report(self, path: str | Path) -> None:
        """Write the HTML report (summary, per-layer table, roofline, engine timeline, SRAM in
        use, quantisation noise, arch): one self-contained file that works offline. An
        unwritable path raises InputError (so do save_trace and save_csv)."""
        from .report.events import noise_rows
        from .report.html import write_report
        write_report(self.program, self.arch, self.profile(), self.timeline(),
                     noise_rows(self.sqnr, self.program.meta), path, f"npukit report: {self._title()}")

    def save_trace(self, path: str | Path) -> None:
        """Write the engine timeline as Chrome trace-event JSON (Perfetto UI, chrome://tracing):
        a track per engine, an event per instruction, times in microseconds at the arch clock."""
        from .report.trace import write_trace
        write_trace(self.program, self.arch, self.timeline(), path, f"npukit: {self._title()}")

    def save_csv(self, path: str | Path) -> None:
        """Write the per-layer table as CSV, one row per profile layer."""
        from .report.events import noise_rows
        from .report.trace import layers_csv, write_text
        noise = noise_rows(self.sqnr, self.program.meta)
        write_text(path, layers_csv(self.program, self.profile(), self.arch, noise))

    def to_bytes(self) -> bytes:
        return self.program.to_bytes(self.arch.fingerprint)

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    def disasm(self) -> str:
        names = [r.name for r in self.arch.regions]
        return disassemble(self.program.instructions, names, [layer.name for layer in self.program.layers])


def compile(model: str | Path, arch: str | Path | Arch = "npu-m",
            input_shapes: dict[str, tuple[int, ...]] | None = None,
            calibration: dict[str, np.ndarray] | None = None, method: str = "minmax",
            options: CompileOptions | Mapping[str, Any] | None = None, sqnr: bool = True,
            random_samples: int = 8, host: str = "auto", *, input_values: Mapping[str, Any] | None = None,
            host_nodes: Iterable[str] = (), int16_below_db: float | None = None) -> CompiledModel:
    """Compile an ONNX or TFLite model for an architecture (preset name, TOML path or Arch).

    `options`: compiler options by name ({"timed_candidates": 1}; every field of CompileOptions,
    validated) or a CompileOptions. `sqnr` computes the per-layer noise report;
    `random_samples` random inputs calibrate a float model when no `calibration` is given
    (with a loud warning). `host`: "auto" runs what the NPU cannot on the host CPU (listed in
    the profile's host_ops, with reasons); "never" makes that an error listing every such
    operator. `input_values` binds ONNX inputs to constants ({"sr": 16000}: the shape and
    control-flow subgraphs depending on them fold). `host_nodes` names ONNX nodes to run in
    float on the host although the NPU could. `int16_below_db` widens to int16 the
    activations whose layer's int8 noise is below that SQNR (None: all int8)."""
    from .compiler import compile_model
    opts = options_from(CompileOptions, options)
    a = _arch(arch)
    program, qg, sqnr = compile_model(model, a, input_shapes, calibration, method, opts, sqnr, random_samples, host,
                                      dict(input_values or {}), frozenset(host_nodes), int16_below_db)
    return CompiledModel(program, a, qg, sqnr)


def info(model: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None, *,
         input_values: Mapping[str, Any] | None = None, arch: str | Path | Arch = "npu-m") -> ModelInfo:
    """What a model file holds and where each of its layers would run on `arch`, without
    calibration: inputs and outputs as the file states them (dynamic dims marked), the
    operator histogram, and the NPU / host placement once every input shape is fixed."""
    from .compiler import load_model, placements
    from .frontend.signature import bind_values, read_signature
    sig = read_signature(model)
    given = set(input_shapes or {}) | set(input_values or {})
    unknown = sorted(given - {t.name for t in sig.inputs})
    if unknown:
        raise InputError(f"{unknown[0]!r} is not an input of the model (inputs: "
                         f"{', '.join(t.name for t in sig.inputs)})")
    # a TFLite file also stores the shape it was built with: that is what it compiles with
    open_dims = [t for t in sig.inputs if not t.is_static and t.name not in given and sig.format == "onnx"]
    bind_values(sig, input_values or {})        # checked even when placement cannot be given
    a = _arch(arch)
    rows, note = None, ""
    if open_dims:
        note = ("placement needs fixed input shapes: give " +
                ", ".join(f"--input-shape {t.name}=..." for t in open_dims))
    else:
        try:
            rows = placements(load_model(model, input_shapes, dict(input_values or {})), a)
        except (ModelError, ScheduleError) as e:
            note = f"placement unavailable: {e}"
    return ModelInfo(str(model), sig.format, a.name, sig.inputs, sig.outputs, sig.operators, rows, note)


def loads(data: bytes) -> CompiledModel:
    program = Program.from_bytes(data)
    arch = Arch.from_toml_text(program.arch_toml)
    if arch.fingerprint != program.meta.get("arch_fingerprint"):
        raise BinaryError("architecture section does not match the binary's fingerprint")
    return CompiledModel(program, arch)


def load(path: str | Path) -> CompiledModel:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such binary: {p}")
    return loads(p.read_bytes())


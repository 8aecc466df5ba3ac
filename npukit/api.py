"""The Python API: compile a model, run it on the simulated NPU, profile it, save and load it."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .arch import Arch, load_arch
from .codegen.context import CompileOptions
from .errors import BinaryError, InputError
from .isa import instructions as I
from .isa.encoding import disassemble
from .isa.program import Program
from .quant import kernels_vpu as kv
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
            options: CompileOptions | None = None, sqnr: bool = True,
            random_samples: int = 8, host: str = "auto") -> CompiledModel:
    """Compile an ONNX or TFLite model for an architecture (preset name, TOML path or Arch).
    `sqnr` computes the per-layer noise report; `random_samples` random inputs calibrate a
    float model when no `calibration` is given (with a loud warning). `host`: "auto" runs
    what the NPU cannot on the host CPU (listed in the profile's host_ops, with reasons);
    "never" makes that an error listing every such operator."""
    from .compiler import compile_model
    a = _arch(arch)
    program, qg, sqnr = compile_model(model, a, input_shapes, calibration, method, options or CompileOptions(),
                                      sqnr, random_samples, host)
    return CompiledModel(program, a, qg, sqnr)


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


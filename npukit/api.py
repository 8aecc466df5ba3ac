"""The Python API: compile a model, run it on the simulated NPU, profile it, save and load it."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from .arch import Arch, load_arch
from .choices import HostPolicy, Method
from .codegen.context import CompileOptions
from .codegen.options import Precision, options_from
from .codegen.reuse import checked
from .cost.timing import simulate
from .errors import BinaryError, InputError, ModelError, NpukitError, ScheduleError
from .isa import instructions as I
from .isa.encoding import disassemble
from .isa.program import Program
from .report.profile import Profile, build_profile

if TYPE_CHECKING:
    from .report.info import ModelInfo
    from .sim.functional import Simulator

# The functional simulator (and the integer kernels under it) loads on the first run, not
# with the API: compiling and profiling never run the program.


def _arch(arch: str | Path | Arch) -> Arch:
    return arch if isinstance(arch, Arch) else load_arch(arch)


class CompiledModel:
    """A compiled program bound to its architecture: run it on the simulated NPU, time it,
    report on it, save it. Made by `npukit.compile`, `npukit.load` or `npukit.loads`.

    Attributes: `program` (the decoded `.npub`: instructions, memory images, inputs and
    outputs, layers, meta), `arch` (the `Arch` it was compiled for), `qgraph` (the integer
    graph; None after `load`), `sqnr` (the per-layer noise report, worst first: a list of
    `LayerSqnr(layer, op, sqnr_db)`; empty for a pre-quantised model or `sqnr=False`),
    `schedule` (the `npukit.schedule.plan.Schedule` it was lowered with; None after `load`),
    `scales` (the `npukit.quant.scales.Scales` quantised with: calibrated ranges and int16
    widenings, for `compile(scales=...)` at other input shapes; None after `load` or for a
    pre-quantised model).
    """

    def __init__(self, program: Program, arch: Arch, qgraph=None, sqnr=None, schedule=None, scales=None):
        self.program, self.arch, self.schedule, self.scales = program, arch, schedule, scales
        self.qgraph, self.sqnr = qgraph, sqnr or []
        self._simulator: Simulator | None = None
        self._profile: Profile | None = None
        self._timeline = None

    @property
    def accuracy(self) -> dict | None:
        """Each output against float on calibration samples held out from calibration:
        {"heldout_samples", "note" (why there are no numbers), "outputs": [{"output",
        "cosine", "sqnr_db", "argmax_agreement" (None unless class scores)}]}; None when not
        measured (a pre-quantised model, sqnr=False)."""
        return self.program.meta.get("accuracy")

    @property
    def precision(self) -> dict | None:
        """precision "auto" / "int16": the widened tensors, the worst output SQNR int8 and
        mixed, whether min_sqnr was met, and per layer with an int16 activation its cycles
        int8 and mixed (timing model); None for precision "int8"."""
        return self.program.meta.get("precision")

    @property
    def _sim(self) -> Simulator:
        if self._simulator is None:
            from .sim.functional import Simulator
            sram = {I.ABUF: self.arch.abuf_bytes, I.WBUF: self.arch.wbuf_bytes, I.ACC: self.arch.acc_bytes}
            self._simulator = Simulator(self.program, sram)
        return self._simulator

    @property
    def input_names(self) -> list[str]:
        """The model's input names, in order: the keys `run` takes."""
        return [t.name for t in self.program.inputs]

    @property
    def output_names(self) -> list[str]:
        """The model's output names, in order: the keys `run` returns."""
        return [t.name for t in self.program.outputs]

    @property
    def input_specs(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """{input name: (shape, dtype)} as `run` takes them: float32 (float16 also accepted)
        for an input the model declares as float, the model's integer type otherwise."""
        return {t.name: (t.shape, _user_dtype(t)) for t in self.program.inputs}

    @property
    def output_specs(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """{output name: (shape, dtype)} as `run` returns them."""
        return {t.name: (t.shape, _user_dtype(t)) for t in self.program.outputs}

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one inference on the simulated NPU, bit-exactly.

        `feeds`: {input name: numpy array} with every input of `input_specs`, each of exactly
        its shape (the batch is part of the shape the model was compiled for) and dtype: an
        input the model declares as float takes float32 or float16 holding finite numbers
        (quantised at the boundary with the input's scale, as on a device); an integer input
        takes exactly the integer dtype the model declares (int8 for a pre-quantised TFLite
        model's input; int64 for ONNX token ids, their values within the NPU's int32).
        Nothing is converted: cast first (`x.astype(np.float32)`). Returns {output name:
        array}: float32 for a float output (dequantised), the model's integer type otherwise.
        A stateful (streaming) model keeps its state between calls (`reset_state`).

        Raises InputError naming the feed (`feeds['x']`) and what to pass for an unknown or
        missing name, a wrong shape, a list or other non-array, any other dtype (float64,
        int64, complex, bool, object, ...), or NaN or infinity in a float input.
        """
        from .kernels import kernels_vpu as kv
        out = self._sim.run(self._ints(feeds))
        return {t.name: kv.dequantize(out[t.name], t.scale, t.zero_point) if t.is_float and t.dtype != "float32" else out[t.name]
                for t in self.program.outputs}

    def run_int(self, feeds: Mapping[str, np.ndarray], order: list[int] | None = None) -> dict[str, np.ndarray]:
        """Run one inference on the NPU's own integer tensors, with no boundary conversion:
        every input in its NPU type (`program.inputs[i].dtype`; a float input's quantised
        values), every output as the NPU leaves it. `order`: a dependency-respecting
        permutation of the instruction indices to run them in (as the timing model schedules
        them); None runs them in program order. Raises InputError as `run` does."""
        return self._sim.run(feeds, order)

    def reset_state(self) -> None:
        """Restart a stateful (streaming) model: its variables return to their initial values."""
        self._sim.reset()

    def _ints(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        from .sim import jit      # numba loads on the first run, not on import
        from .sim.functional import check_feeds
        arrays = check_feeds(self.program.inputs, feeds, boundary=True)
        ints = {}
        for t in self.program.inputs:
            x = arrays[t.name]
            ints[t.name] = jit.quantize(x, t.scale, t.zero_point, np.dtype(t.dtype)) \
                if t.is_float and t.dtype != "float32" else x.astype(t.dtype, copy=False)
        return ints

    def seconds_by_kind(self, feeds: Mapping[str, np.ndarray]) -> dict[str, tuple[int, float]]:
        """Time one simulated inference on this host, per instruction kind: {kind: (count,
        wall-clock seconds)} (the simulator's own speed, not the NPU's: see `profile`).
        `feeds` as for `run`; a streaming model's state advances."""
        return self._sim.seconds_by_kind(self._ints(feeds))

    def profile(self) -> Profile:
        """The timing model's profile of one inference on `arch` (computed once, then cached):
        total cycles and latency (ms at the arch clock), energy (uJ), area (mm^2), off-chip
        traffic (bytes, per region), SRAM peak, utilisation, roofline, host operators, and one
        `LayerProfile` per layer. The timing does not depend on the input data."""
        if self._profile is None:
            self._profile = build_profile(self.program, self.arch, self.timeline())
        return self._profile

    def timeline(self):
        """The timing model's schedule (`cost.timing.Timeline`): each instruction's start and end
        cycle and engine, per-layer event counts, total cycles (computed once, then cached)."""
        if self._timeline is None:
            self._timeline = simulate(self.program, self.arch)
        return self._timeline

    def for_arch(self, arch: str | Path | Arch, reuse: Any = None) -> CompiledModel:
        """The same integer graph lowered for another architecture: the same numerics (scales,
        int16 choice, noise report), with no import or calibration again. Needs `qgraph` (a
        compiled model, not a loaded one); precision's per-arch cycle costs are not carried
        over (`precision` is None). `reuse`: as for `compile`."""
        if self.qgraph is None:
            raise InputError("for_arch needs the integer graph: compile the model (a loaded .npub has none)")
        from .codegen.lower import lower_program
        a = _arch(arch)
        used: list[Any] = []
        meta = {k: v for k, v in self.program.meta.items() if k != "precision"}
        program = lower_program(self.qgraph, a, CompileOptions(**meta["options"]), meta, None, used, checked(reuse))
        return CompiledModel(program, a, self.qgraph, self.sqnr, used[-1], self.scales)

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
        """The `.npub` binary: the program, its arch (with fingerprint) and its meta, which
        keeps the noise report `sqnr` (`loads` restores it)."""
        meta = {**self.program.meta, "sqnr": [s.to_json() for s in self.sqnr]}
        return replace(self.program, meta=meta).to_bytes(self.arch.fingerprint)

    def save(self, path: str | Path) -> None:
        """Write the `.npub` binary to `path` (see `to_bytes`); `npukit.load` reads it back.
        Raises InputError when the file cannot be written."""
        p = Path(path)
        try:
            p.write_bytes(self.to_bytes())
        except OSError as e:
            raise InputError(f"cannot write {p}: {e.strerror or e}") from None

    def disasm(self) -> str:
        """The instruction stream as text, one instruction a line, with regions and layers named."""
        names = [r.name for r in self.arch.regions]
        return disassemble(self.program.instructions, names, [layer.name for layer in self.program.layers])

    def __repr__(self) -> str:
        hosted = sum(la.target == "host" for la in self.program.layers)
        try:
            p = self.profile()
            cycles = f"{p.total_cycles} cycles ({p.latency_ms * 1e3:.4g} us at {p.clock_mhz:g} MHz)"
        except NpukitError as e:
            cycles = f"cycles unavailable ({e})"
        return "\n".join([
            f"<npukit.CompiledModel {self._title()}",
            "  inputs:  " + ", ".join(f"{n} {d}{list(s)}" for n, (s, d) in self.input_specs.items()),
            "  outputs: " + ", ".join(f"{n} {d}{list(s)}" for n, (s, d) in self.output_specs.items()),
            f"  arch {self.arch.name}: {_count(len(self.program.layers), 'layer')} ({len(self.program.layers) - hosted} "
            f"NPU, {hosted} host), {_count(len(self.program.instructions), 'instruction')}, {cycles}>"])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _user_dtype(t) -> np.dtype:
    return np.dtype("float32" if t.is_float else t.declared or t.dtype)


def compile(model: str | Path, arch: str | Path | Arch = "npu-m",
            input_shapes: dict[str, tuple[int, ...]] | None = None,
            calibration: dict[str, np.ndarray] | None = None, method: Method = "auto",
            options: CompileOptions | Mapping[str, Any] | None = None, sqnr: bool = True,
            random_samples: int = 8, host: HostPolicy = "auto", *, input_values: Mapping[str, Any] | None = None,
            host_nodes: Iterable[str] = (), int16_below_db: float | None = None,
            schedule: Any = None, precision: Precision | None = None, min_sqnr: float | None = None,
            scales: Any = None, reuse: Any = None) -> CompiledModel:
    """Compile an ONNX (`.onnx`) or TFLite (`.tflite`) model for an architecture.

    `arch`: a preset name ("npu-s", "npu-m", "npu-l", "npu-dc", "u55-256"), an arch TOML path
    or an `Arch`. `input_shapes`: {input name: shape} fixing the model's dynamic dims (in the
    model's own layout, e.g. NCHW for ONNX; the batch included). `calibration`: {input name:
    float array of shape [N, *input shape]}, N samples to choose the int8 ranges from;
    without it, `random_samples` random inputs stand in, with a loud warning. A
    pre-quantised model (int8 TFLite, QDQ ONNX) keeps its own scales and needs none.
    `method`: how ranges are chosen ("auto", the default: "hybrid" for a model with a dense
    output map, else "minmax"; "percentile", "mse", "entropy"; docs/numerics.md). `options`: compiler
    options by name ({"timed_candidates": 1}; every field of CompileOptions, validated) or a
    CompileOptions. `sqnr`: compute the per-layer noise report (`CompiledModel.sqnr`, dB).
    `host`: "auto" runs what the NPU cannot on the host CPU (listed in the profile's
    host_ops, with reasons); "never" makes that an error listing every such operator.
    `input_values` binds ONNX inputs to constants ({"sr": 16000}: the shape and control-flow
    subgraphs depending on them fold). `host_nodes` names ONNX nodes to run in float on the
    host although the NPU could. `int16_below_db` widens to int16 the activations whose
    layer's int8 noise is below that SQNR in dB (None: all int8). `schedule`: a pinned
    schedule (a `Schedule` or the path of its JSON, as `CompiledModel.schedule.to_json()`
    writes): the program is lowered with its choices; one that does not fit the model's
    graph or the arch raises ScheduleError. `precision` ("int8", the default; "int16";
    "auto") and `min_sqnr` (dB, for "auto"; default 30) set those options (see
    docs/numerics.md): "int16" widens every activation the NPU runs in int16 (16x8), "auto"
    widens those that gain most per estimated cycle until the worst output SQNR on the
    held-out calibration folds reaches `min_sqnr` (the cheapest such set measured; out of
    reach: the cheapest with every output within 1 dB of its own SQNR all widened, judged
    on the folds but the one that costs the output most), with round-to-nearest, GPTQ or
    sequential GPTQ int8 weights, whichever the folds (but the worst) measure better output
    by output (`gptq` left "never"); what was
    widened, the rounding and its cycle cost are in `CompiledModel.precision`,
    the outputs' accuracy against float in `CompiledModel.accuracy`. `scales`: the `scales` of
    an earlier compile of the same model at other input shapes (a transformer's token count):
    its calibrated ranges and int16 widenings are applied, so no calibration data, no
    `int16_below_db` or `precision` choice, and no noise report (docs/transformers.md).
    `reuse`: an `npukit.Reuse()` the caller passes to several compiles of one model (each
    token count, each arch via `for_arch`): the ONNX file is imported once (what it alone
    fixes), each dense layer quantised once (with `scales`) and weight blocks are compressed
    once and shared, the programs byte-identical to compiling each alone; the caller drops it
    when done.

    Raises InputError (missing file, unknown input name, bad option or calibration data),
    ModelError / UnsupportedOpError (malformed model, operator npukit cannot compile), ArchError
    (bad arch) or ScheduleError (a layer that does not fit the arch): all NpukitError.
    """
    from .compiler import compile_model
    opts = options_from(CompileOptions, options)
    given = {k: v for k, v in (("precision", precision), ("min_sqnr", min_sqnr)) if v is not None}
    opts = replace(opts, **given) if given else opts
    _check_scales(scales, calibration, int16_below_db, opts)
    a = _arch(arch)
    pinned = _schedule(schedule)
    used: list[Any] = []
    chose: list[Any] = []
    program, qg, report = compile_model(model, a, input_shapes, calibration, method, opts, sqnr, random_samples, host,
                                      dict(input_values or {}), frozenset(host_nodes), int16_below_db, pinned, used,
                                      scales, chose, checked(reuse))
    return CompiledModel(program, a, qg, report, used[-1] if used else None, chose[-1] if chose else None)


def _check_scales(scales, calibration, int16_below_db, opts: CompileOptions) -> None:
    if scales is None:
        return
    from .quant.scales import Scales
    if not isinstance(scales, Scales):
        raise InputError(f"scales must be a CompiledModel's scales, not {type(scales).__name__}")
    given = [what for what, on in (("calibration", calibration is not None), ("int16_below_db", int16_below_db
             is not None), (f"precision={opts.precision!r}", opts.precision != "int8")) if on]
    if given:
        raise InputError(f"scales already fix the ranges and int16 choice: drop {' and '.join(given)}")


def _schedule(given):
    """None, a Schedule, or a Schedule read from a JSON file."""
    from .schedule.plan import Schedule
    if given is None or isinstance(given, Schedule):
        return given
    if not isinstance(given, (str, Path)):
        raise InputError(f"schedule must be a Schedule or the path of its JSON, not {type(given).__name__}")
    try:
        text = Path(given).read_bytes()
    except OSError as e:
        raise InputError(f"cannot read schedule {given}: {e.strerror or e}") from None
    return Schedule.from_json(text)


def info(model: str | Path, input_shapes: dict[str, tuple[int, ...]] | None = None, *,
         input_values: Mapping[str, Any] | None = None, arch: str | Path | Arch = "npu-m") -> ModelInfo:
    """What a model file holds and where each of its layers would run on `arch`, without
    calibration: inputs and outputs as the file states them (dynamic dims marked), the
    operator histogram, and the NPU / host placement once every input shape is fixed
    (`input_shapes` and `input_values` as for `compile`). Returns a `ModelInfo` (`str()` is
    `npukit info`'s text, `to_dict()` its JSON). Raises InputError for an input name the
    model does not have, ModelError for a file it cannot read; a placement that cannot be
    given (open dims, a refused operator) is explained in `ModelInfo.note` instead."""
    from .compiler import load_model, placements
    from .frontend.signature import bind_values, read_signature
    from .report.info import ModelInfo
    sig = read_signature(model)
    given = set(input_shapes or {}) | set(input_values or {})
    unknown = sorted(given - {t.name for t in sig.inputs})
    if unknown:
        raise InputError(f"{unknown[0]!r} is not an input of the model (inputs: "
                         f"{', '.join(t.name for t in sig.inputs)})")
    # a TFLite file also stores the shape it was built with: that is what it compiles with
    open_dims = [t for t in sig.inputs
                 if not t.is_static and not t.batch_only and t.name not in given and sig.format == "onnx"]
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
    """A CompiledModel from `.npub` bytes (`CompiledModel.to_bytes`), bound to the arch the
    binary carries, with the noise report it stored (`sqnr`; no `qgraph`). Raises
    BinaryError for a corrupt or truncated binary, another format version, or an arch
    section that does not match its fingerprint."""
    from .measure import LayerSqnr
    from .isa.validate import check_against_arch
    from .sim.segments import check_segments
    program = Program.from_bytes(data)
    check_segments(program.host_segments, program.host_blobs)
    arch = Arch.from_toml_text(program.arch_toml)
    if arch.fingerprint != program.meta.get("arch_fingerprint"):
        raise BinaryError("architecture section does not match the binary's fingerprint")
    check_against_arch(program, arch)
    try:
        sqnr = [LayerSqnr.from_json(d) for d in program.meta.get("sqnr") or []]
    except (KeyError, TypeError, ValueError) as e:
        raise BinaryError(f"corrupt noise report in the binary's meta: {type(e).__name__}: {e}") from None
    return CompiledModel(program, arch, sqnr=sqnr)


def load(path: str | Path) -> CompiledModel:
    """Read a `.npub` file written by `CompiledModel.save` or `npukit compile -o` (see
    `loads`). Raises InputError when the file does not exist, BinaryError when it is not a
    valid binary."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"no such binary: {p}")
    from .limits import BINARY_BYTES
    BINARY_BYTES.check(p.stat().st_size, f"binary {p}", BinaryError)   # before reading it
    try:
        data = p.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read {p}: {e.strerror or e}") from None
    return loads(data)

"""The `npukit` command line. Every user error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import gc
import importlib
import os
import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, TypeAlias, cast

import typer

from . import __version__, progress
from .choices import HOST_POLICIES, METHODS
from .codegen.options import CHOICES
from .errors import InputError, NpukitError
from .limits import MIB, POINT_MEMORY, POINT_SECONDS

if TYPE_CHECKING:
    import numpy as np

    from .api import CompiledModel
    from .codegen.context import CompileOptions

# Each command imports what it needs in its body: `npukit --help`, `--version` and `archs`
# load neither numpy nor the compiler.


class _Command(typer.core.TyperCommand):
    """A command whose line in `npukit --help` is its docstring's whole first paragraph, not a
    first sentence cut at the terminal width."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or " ".join((self.help or "").split("\n\n")[0].split())


# Plain help layout (rich_markup_mode=None) and plain tracebacks: typer's rich layout loads
# rich's console, markdown and pygments (about 0.1 s, half of `npukit --help`); usage errors
# are main()'s one line either way.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="npukit: compile models to an int8 NPU, simulate them bit-exactly, and time them.")


def _choices(name: str, values: Iterable[str]) -> type[Enum]:
    """An option's fixed values as an Enum: typer checks them while parsing the command line."""
    return cast(type[Enum], Enum(name, {v: v for v in values}, type=str))


if TYPE_CHECKING:   # built at run time from the option tables: a checker sees plain Enums
    Method: TypeAlias = Enum
    Dataflow: TypeAlias = Enum
    Compress: TypeAlias = Enum
    Host: TypeAlias = Enum
    Precision: TypeAlias = Enum
else:
    Method = _choices("Method", METHODS)
    Dataflow = _choices("Dataflow", CHOICES["dataflow"])
    Compress = _choices("Compress", CHOICES["compress_weights"])
    Host = _choices("Host", HOST_POLICIES)
    Precision = _choices("Precision", CHOICES["precision"])

ARCH = typer.Option("npu-m", "--arch", help="preset name or arch TOML file")
SHAPES = typer.Option(None, "--input-shape", help="NAME=D0,D1,... fixes dynamic dims (repeatable)")
CALIB = typer.Option(None, "--calib", help=".npz with one [N, *shape] array per model input")
METHOD = typer.Option(Method.__members__["auto"], "--calib-method",
                      help="how activation ranges are chosen (auto: hybrid for a dense output map, else minmax)")
DATAFLOW = typer.Option(Dataflow.__members__["arch"], "--dataflow", help="the MXU dataflow (arch: the arch file's)")
COMPRESS = typer.Option(Compress.__members__["auto"], "--compress-weights", help="weight blocks stored compressed, or not")
OPTION = typer.Option(None, "--option", help="NAME=VALUE: any compiler option (CompileOptions field), "
                      "e.g. timed_candidates=1, equalize=auto, bias_correction=auto, flat_clip=auto, gptq=auto (repeatable)")
TRACE = typer.Option(None, "--trace", help="write the engine timeline as Chrome trace-event JSON (Perfetto)")
VALUES = typer.Option(None, "--input-value", help="NAME=VALUE or NAME=@FILE.npy: bind an input to a "
                      "constant at compile time (repeatable)")
PRECISION = typer.Option(Precision.__members__["int8"], "--precision",
                         help="int16: 16x8 activations wherever the NPU runs them; auto: where needed for --min-sqnr")
MIN_SQNR = typer.Option(30.0, "--min-sqnr", help="--precision auto: worst output SQNR (dB) to reach on held-out samples")
HOST = typer.Option(Host.__members__["auto"], "--host", help="auto: run what the NPU cannot on the host CPU; never: refuse")


def _frozen_imports(model: Path) -> None:
    """Import the compiler and the model's frontend with the cycle collector paused, then
    freeze everything loaded so far (modules, classes, functions: about 10^5 objects that live
    as long as the process): the collector's full passes during a compile then skip them
    (10-25% of a small model's compile process). Only the command line does this: it is
    one short process."""
    frontend = {".onnx": ".frontend.onnx", ".tflite": ".frontend.tflite"}.get(model.suffix.lower())
    gc.disable()
    try:
        from . import api, compiler  # noqa: F401
        if frontend and model.is_file():
            importlib.import_module(frontend, __package__)
    except ImportError:
        pass            # (a missing optional dependency: the compile says which)
    finally:
        gc.enable()
    gc.freeze()


def _compile(model: Path, arch: str, shapes, calib, method: Enum, options: CompileOptions, values=None,
             sqnr=True, random_samples=8, host: Enum = Host.__members__["auto"], schedule: Path | None = None) -> CompiledModel:
    _frozen_imports(model)
    from . import api
    from .cli_args import input_shapes, input_values, read_npz
    shapes, feeds, bound = input_shapes(shapes), read_npz(calib), input_values(values)
    with progress.status(f"compiling {model.name}"):
        return api.compile(model, arch, shapes, feeds, method.value, options, sqnr, random_samples,
                           host.value, input_values=bound, schedule=schedule)


def _version(show: bool) -> None:
    if show:
        typer.echo(f"npukit {__version__}")
        raise typer.Exit()


@app.callback()
def _global(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                         help="print the version and exit"),
            verbose: bool = typer.Option(False, "--verbose", help="let libraries' own log lines through")):
    """npukit: compile models to an int8 NPU, simulate them bit-exactly, and time them."""
    _quiet(not verbose)


def _quiet(quiet: bool) -> None:
    """Warnings as one "WARNING: ..." line each; other libraries' log noise silenced unless --verbose."""
    import logging
    progress.one_line_warnings()
    if quiet:
        for name in ("ray", "onnxruntime", "optuna", "absl", "tensorflow"):
            logging.getLogger(name).setLevel(logging.ERROR)
    else:
        os.environ[progress.VERBOSE_ENV] = "1"      # seen by worker processes too
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO,
                        format="%(levelname)s: %(name)s: %(message)s")


@app.command(cls=_Command)
def archs(show: Optional[str] = typer.Option(None, "--show", help="print one preset (or TOML file) as TOML")):
    """List the architecture presets with their main parameters."""
    if show:
        from .arch import load_arch
        typer.echo(load_arch(show).to_toml())
        return
    from .arch.catalog import summary_lines
    for line in summary_lines():
        typer.echo(line)


@app.command("compile", cls=_Command)
def compile_cmd(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
                calib: Optional[Path] = CALIB, calib_method: Method = METHOD, dataflow: Dataflow = DATAFLOW,
                compress_weights: Compress = COMPRESS, host: Host = HOST, option: Optional[list[str]] = OPTION,
                input_value: Optional[list[str]] = VALUES, precision: Precision = PRECISION,
                min_sqnr: float = MIN_SQNR,
                output: Path = typer.Option(..., "-o", "--output", help="the .npub to write"),
                json_out: Optional[Path] = typer.Option(None, "--json", help="store the SQNR report as JSON"),
                schedule_in: Optional[Path] = typer.Option(None, "--schedule-in", help="compile with this schedule "
                                                           "(JSON from --schedule-out) instead of making one"),
                schedule_out: Optional[Path] = typer.Option(None, "--schedule-out", help="write the schedule "
                                                            "(partition, fusion, arena, tilings) as JSON")):
    """Compile an ONNX or TFLite model to an .npub binary; prints the per-layer quantisation noise."""
    import json
    from .cli_args import compile_options, output_paths
    from .report.tables import accuracy_lines, host_lines, sqnr_table, summary_line
    output_paths(output, json_out, schedule_out)
    options = compile_options(option, dataflow=dataflow, compress_weights=compress_weights, precision=precision,
                              min_sqnr=min_sqnr)
    prog = _compile(model, arch, input_shape, calib, calib_method, options, input_value, host=host,
                    schedule=schedule_in)
    prog.save(output)
    if schedule_out:
        schedule_out.write_text(prog.schedule.to_json())
    typer.echo(sqnr_table(prog.sqnr))
    if prog.accuracy is not None or prog.precision is not None:
        typer.echo(accuracy_lines(prog.accuracy, prog.precision))
    with progress.status("timing"):
        p = prog.profile()
    typer.echo(host_lines(p.host_ops))
    typer.echo(f"wrote {output}: {p.instructions} instructions, {len(p.host_ops)} host ops, "
               f"{summary_line(p)} on {prog.arch.name}; "
               f"weights {p.weight_bytes:,} B, stored as {p.weight_bytes_compressed:,} B")
    if json_out:
        json_out.write_text(json.dumps({"model": str(model), "arch": prog.arch.name,
                                        "calibration": calib_method.value,
                                        "sqnr": [s.to_json() for s in prog.sqnr], "accuracy": prog.accuracy,
                                        "precision": prog.precision}, indent=1))


@app.command(cls=_Command)
def run(program: Path, input: list[str] = typer.Option(..., "--input", help="NAME=FILE.npy or FILE.npy"),
        output: Path = typer.Option(..., "-o", "--output", help=".npz of outputs keyed by name"),
        frames: bool = typer.Option(False, "--frames", help="stream: feed the inputs' leading axis one "
                                    "frame per run (state persists); outputs are stacked"),
        trace: Optional[Path] = TRACE):
    """Run a compiled program on the functional simulator; prints each output and the cycles,
    latency and energy of one inference."""
    import numpy as np

    from . import api
    from .cli_args import output_paths
    from .npyio import load_npy
    from .report.tables import summary_line
    output_paths(output, trace)
    prog = api.load(program)
    feeds = {}
    for spec in input:
        name, sep, path = spec.partition("=")
        if not sep:
            if len(prog.input_names) != 1:
                raise InputError(f"the model has inputs {prog.input_names}: use --input NAME=FILE.npy")
            name, path = prog.input_names[0], spec
        feeds[name] = load_npy(path, f"--input {spec}", InputError)
    with progress.status(f"running {program.name} on the simulator"):
        outs = _run_frames(prog, feeds) if frames else prog.run(feeds)
        p = prog.profile()
    np.savez(output, **outs)  # type: ignore[arg-type]  # numpy's stub: a key could be allow_pickle
    for name, arr in outs.items():
        typer.echo(f"{name}: {arr.dtype}{list(arr.shape)}")
    typer.echo(f"per inference on {prog.arch.name}: {summary_line(p)}")
    if trace:
        prog.save_trace(trace)


def _run_frames(prog, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One run per index of the inputs' leading axis, in order, on one loaded program."""
    import numpy as np
    counts = {len(x) if np.ndim(x) else 0 for x in feeds.values()}
    if len(counts) != 1 or 0 in counts:
        raise InputError(f"--frames needs inputs with the same, non-zero leading (frame) axis; got "
                         f"{ {n: list(np.shape(x)) for n, x in feeds.items()} }")
    steps = [prog.run({n: x[i] for n, x in feeds.items()}) for i in range(counts.pop())]
    return {name: np.stack([s[name] for s in steps]) for name in steps[0]}


@app.command(cls=_Command)
def profile(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
            calib: Optional[Path] = CALIB, calib_method: Method = METHOD, dataflow: Dataflow = DATAFLOW,
            compress_weights: Compress = COMPRESS, host: Host = HOST, option: Optional[list[str]] = OPTION,
            input_value: Optional[list[str]] = VALUES,
            json_out: Optional[Path] = typer.Option(None, "--json", help="write the profile as JSON"),
            trace: Optional[Path] = TRACE,
            csv: Optional[Path] = typer.Option(None, "--csv", help="write the per-layer table as CSV")):
    """Cycles, bounds, traffic and energy of an .npub (or of a model, compiled in memory)."""
    import json
    from . import api
    from .cli_args import compile_options, output_paths
    output_paths(json_out, trace, csv)
    if model.suffix == ".npub":
        prog = api.load(model)
    else:
        # cycles do not depend on how well random data calibrates: one sample is enough
        options = compile_options(option, dataflow=dataflow, compress_weights=compress_weights)
        prog = _compile(model, arch, input_shape, calib, calib_method, options, input_value, sqnr=False,
                        random_samples=1, host=host)
    with progress.status("timing"):
        p = prog.profile()
    typer.echo(str(p))
    if json_out:
        json_out.write_text(json.dumps(p.to_dict(), indent=1))
    if trace:
        prog.save_trace(trace)
    if csv:
        prog.save_csv(csv)


@app.command(cls=_Command)
def report(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
           calib: Optional[Path] = CALIB, calib_method: Method = METHOD, dataflow: Dataflow = DATAFLOW,
           compress_weights: Compress = COMPRESS, option: Optional[list[str]] = OPTION,
           input_value: Optional[list[str]] = VALUES,
           output: Path = typer.Option(..., "-o", "--output", help="the HTML file to write")):
    """One self-contained HTML report of an .npub (or of a model, compiled in memory): summary,
    per-layer table, roofline, engine timeline, SRAM in use, quantisation noise, arch."""
    from . import api
    from .cli_args import compile_options, output_paths
    output_paths(output)
    if model.suffix == ".npub":
        prog = api.load(model)
    else:
        options = compile_options(option, dataflow=dataflow, compress_weights=compress_weights)
        prog = _compile(model, arch, input_shape, calib, calib_method, options, input_value)
    with progress.status(f"writing {output.name}"):
        prog.report(output)
    typer.echo(f"wrote {output} ({output.stat().st_size / 1024:.0f} KiB): {len(prog.program.layers)} layers, "
               f"{len(prog.program.instructions):,} instructions")


@app.command(cls=_Command)
def export(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
           calib: Optional[Path] = CALIB, calib_method: Method = METHOD, host: Host = HOST, option: Optional[list[str]] = OPTION,
           input_value: Optional[list[str]] = VALUES,
           qdq: Path = typer.Option(..., "--qdq", help="the QDQ ONNX model to write")):
    """Write npukit's quantised graph as a QDQ ONNX model (runs in onnxruntime)."""
    from .cli_args import compile_options, output_paths
    from .export import export_qdq
    output_paths(qdq)
    prog = _compile(model, arch, input_shape, calib, calib_method, compile_options(option), input_value, sqnr=False, host=host)
    export_qdq(prog, qdq)
    typer.echo(f"wrote {qdq}: {len(prog.qgraph.nodes)} quantised layers, inputs {prog.input_names}, "
               f"outputs {prog.output_names}")


@app.command(cls=_Command)
def info(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
         input_value: Optional[list[str]] = VALUES,
         json_out: Optional[Path] = typer.Option(None, "--json", help="write the report as JSON")):
    """A model's inputs and outputs (dynamic dims marked), operator histogram and where each
    layer would run (NPU or host, with the reason). No calibration needed."""
    import json
    from . import api
    from .cli_args import input_shapes, input_values, output_paths
    output_paths(json_out)
    with progress.status(f"reading {model.name}"):
        report = api.info(model, input_shapes(input_shape), input_values=input_values(input_value), arch=arch)
    typer.echo(str(report))
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=1))


@app.command(cls=_Command)
def disasm(program: Path):
    """Print an .npub's instruction stream as assembly."""
    from . import api
    typer.echo(api.load(program).disasm())


def _ray_address(value: str | None) -> str | None:
    if value is not None and value != "auto" and not value.startswith("ray://"):
        raise typer.BadParameter(f"{value!r} is neither auto nor ray://HOST:PORT")
    return value


@app.command(cls=_Command)
def explore(model: Optional[list[Path]] = typer.Option(None, "--model", help="a model to sweep (repeatable)"),
            space: Path = typer.Option(..., "--space", help="the design-space TOML file"),
            db: Path = typer.Option(..., "--db", help="SQLite results database (created or resumed)"),
            workers: Optional[int] = typer.Option(None, "--workers", min=1, help="local worker processes [CPUs]"),
            ray: Optional[str] = typer.Option(None, "--ray", callback=_ray_address,
                                              help="auto | ray://HOST:PORT: run on Ray"),
            point_seconds: float = typer.Option(POINT_SECONDS.value, "--point-seconds", min=0,
                                                help="time limit of one point; past it the point is stored as failed (0 = none)"),
            point_memory_mib: int = typer.Option(POINT_MEMORY.value // MIB, "--point-memory-mib", min=0,
                                                 help="memory limit of a worker process, MiB (0 = none)"),
            quiet: bool = typer.Option(False, "--quiet", help="no progress bar")):
    """Sweep (arch, model, compiler options) design points into a results database."""
    from .dse import PointLimits, load_space, make_executor
    from .cli_args import output_paths
    from .dse import explore as run_sweep
    output_paths(db)
    sweep = load_space(space).with_models(list(model or []))
    limits = PointLimits(point_seconds, point_memory_mib * MIB)
    s = run_sweep(sweep, db, make_executor(workers, ray, limits), progress=not quiet)
    typer.echo(f"{s.candidates} candidates: {s.computed} computed ({s.failed} failed), {s.reused} already "
               f"stored, {s.duplicates} duplicates, {s.lost} lost; {s.seconds:.1f} s, "
               f"{s.points_per_second:.1f} points/s -> {db}")
    if s.lost:
        typer.secho(f"WARNING: {s.lost} points lost to dying workers; run again to retry them", fg="yellow", err=True)
    if _MAIN:   # the database is closed and the workers gone: skip tearing down all the sweep loaded
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@app.command(cls=_Command)
def pareto(db: Path = typer.Option(..., "--db", help="results database written by `npukit explore`"),
           objectives: str = typer.Option("latency,energy,area", "--objectives",
                                          help="comma-separated: latency, energy, area, utilisation, sram, dram, cycles"),
           model: Optional[str] = typer.Option(None, "--model", help="only this model (file stem)"),
           csv: Optional[Path] = typer.Option(None, "--csv", help="write the front as CSV"),
           json_out: Optional[Path] = typer.Option(None, "--json", help="write the front as JSON"),
           plot: Optional[Path] = typer.Option(None, "--plot", help="write an interactive HTML plot")):
    """Pareto fronts (one per model) of the stored design points."""
    from .dse.pareto import (
        front_records,
        pareto_front,
        parse_objectives,
        write_csv,
        write_json,
    )
    from .cli_args import output_paths
    from .dse.store import open_existing
    output_paths(csv, json_out, plot)
    objs = parse_objectives(objectives)
    with open_existing(db) as store:
        rows = store.rows(model=model)
    if not any(r["status"] == "ok" for r in rows):
        raise InputError(f"{db}: no successful points" + (f" for model {model!r}" if model else ""))
    front = pareto_front(rows, objs)
    records = front_records(front, objs)
    for rec in records:
        typer.echo("  ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                             for k, v in rec.items() if k != "key"))
    typer.echo(f"{len(front)} Pareto-optimal of {sum(r['status'] == 'ok' for r in rows)} successful points")
    if csv:
        write_csv(records, csv)
    if json_out:
        write_json(records, json_out)
    if plot:
        from .report.pareto_plot import write_pareto_plot
        write_pareto_plot(rows, front, objs, plot)


def _command_path() -> str:
    """"npukit COMMAND" for the command named on the command line (else "npukit")."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)     # the app has several commands
    names = group.commands
    return " ".join(["npukit", *[a for a in sys.argv[1:] if a in names][:1]])


_MAIN = False   # running as the npukit command (main), not called in-process


def main() -> None:
    global _MAIN
    _MAIN = True
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    try:
        app(prog_name="npukit", standalone_mode=False)
    except NpukitError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except (typer.Exit, SystemExit) as e:
        sys.exit(getattr(e, "exit_code", getattr(e, "code", 0)) or 0)
    except Exception as e:  # usage errors and anything unforeseen: one line, no traceback
        # typer raises its command-line parser's exceptions (click's, or its own copy of
        # click's in newer releases): usage errors have format_message, Ctrl-C is Abort
        format_message = getattr(e, "format_message", None)
        if callable(format_message):
            if type(e).__name__ == "NoArgsIsHelpError":     # no arguments at all: the help
                typer.echo(format_message())
                sys.exit(2)
            ctx = getattr(e, "ctx", None)
            hint = f" (see {ctx.command_path if ctx is not None else _command_path()} --help)"
            message = " ".join(format_message().replace("Value error, ", "").split())
            typer.secho(f"error: {message}{hint}", fg="red", err=True)
            sys.exit(2)
        if type(e).__name__ == "Abort":
            sys.exit(130)
        if debug:
            traceback.print_exc()
        typer.secho(f"internal error ({type(e).__name__}): {e} — rerun with --debug for details",
                    fg="red", err=True)
        sys.exit(3)


if __name__ == "__main__":
    main()

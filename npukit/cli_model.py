"""The commands on one model or program: compile, run, profile, report, export, info, disasm
(registered on the app by npukit.cli). Each imports what it needs in its body."""
from __future__ import annotations

import gc
import importlib
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from . import progress
from .cli_options import (ARCH, CALIB, COMPRESS, DATAFLOW, HOST, METHOD, MIN_SQNR, OPTION, PRECISION, SHAPES, TRACE,
                          VALUES, Compress, Dataflow, Host, Method, Precision)
from .errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from .api import CompiledModel
    from .codegen.context import CompileOptions


def _frozen_imports(model: Path) -> None:
    """Import the compiler, the command line's argument parsing (numpy, the arch schema) and
    the model's frontend with the cycle collector paused, then
    freeze everything loaded so far (modules, classes, functions: about 10^5 objects that live
    as long as the process): the collector's full passes during a compile then skip them
    (10-25% of a small model's compile process). Only the command line does this: it is
    one short process."""
    frontend = {".onnx": ".frontend.onnx", ".tflite": ".frontend.tflite"}.get(model.suffix.lower())
    gc.disable()
    try:
        from . import api, cli_args, compiler  # noqa: F401
        if frontend and model.is_file():
            importlib.import_module(frontend, __package__)
    except ImportError:
        pass            # (a missing optional dependency: the compile says which)
    finally:
        gc.enable()
    gc.freeze()


def _compile(model: Path, arch: str, shapes, calib, method: Enum, options: CompileOptions, values=None,
             sqnr=True, random_samples=8, host: Enum = Host.__members__["auto"], schedule: Path | None = None) -> CompiledModel:
    from . import api
    from .cli_args import input_shapes, input_values, read_npz
    shapes, feeds, bound = input_shapes(shapes), read_npz(calib), input_values(values)
    with progress.status(f"compiling {model.name}"):
        return api.compile(model, arch, shapes, feeds, method.value, options, sqnr, random_samples,
                           host.value, input_values=bound, schedule=schedule)


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
    _frozen_imports(model)
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
    _frozen_imports(model)
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


def report(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
           calib: Optional[Path] = CALIB, calib_method: Method = METHOD, dataflow: Dataflow = DATAFLOW,
           compress_weights: Compress = COMPRESS, option: Optional[list[str]] = OPTION,
           input_value: Optional[list[str]] = VALUES,
           output: Path = typer.Option(..., "-o", "--output", help="the HTML file to write")):
    """One self-contained HTML report of an .npub (or of a model, compiled in memory): summary,
    per-layer table, roofline, engine timeline, SRAM in use, quantisation noise, arch."""
    from . import api
    _frozen_imports(model)
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


def export(model: Path, arch: str = ARCH, input_shape: Optional[list[str]] = SHAPES,
           calib: Optional[Path] = CALIB, calib_method: Method = METHOD, host: Host = HOST, option: Optional[list[str]] = OPTION,
           input_value: Optional[list[str]] = VALUES,
           qdq: Path = typer.Option(..., "--qdq", help="the QDQ ONNX model to write")):
    """Write npukit's quantised graph as a QDQ ONNX model (runs in onnxruntime)."""
    _frozen_imports(model)
    from .cli_args import compile_options, output_paths
    from .export import export_qdq
    output_paths(qdq)
    prog = _compile(model, arch, input_shape, calib, calib_method, compile_options(option), input_value, sqnr=False, host=host)
    export_qdq(prog, qdq)
    typer.echo(f"wrote {qdq}: {len(prog.qgraph.nodes)} quantised layers, inputs {prog.input_names}, "
               f"outputs {prog.output_names}")


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


def disasm(program: Path):
    """Print an .npub's instruction stream as assembly."""
    from . import api
    typer.echo(api.load(program).disasm())

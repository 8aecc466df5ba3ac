"""The `npukit` command line. Every user error is one line on stderr and a non-zero exit."""
from __future__ import annotations

import gc
import os
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

from . import __version__, progress
from .cli_model import compile_cmd, disasm, export, info, profile, report, run
from .errors import InputError, NpukitError
from .limits import MIB, POINT_MEMORY, POINT_SECONDS

# Each command imports what it needs in its body: `npukit --help`, `--version` and `archs`
# load neither numpy nor the compiler.


class _Command(typer.core.TyperCommand):
    """A command whose line in `npukit --help` is its docstring's whole first paragraph, not a
    first sentence cut at the terminal width."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return self.short_help or " ".join((self.help or "").split("\n\n")[0].split())

    def invoke(self, ctx):
        _resume_gc()
        return super().invoke(ctx)


def _resume_gc() -> None:
    """The command line parses with the cycle collector paused (`main`): parsing loads
    pydantic's schema machinery for typer's option adapters (objects that live as long as the
    process, which the collector's passes would walk again and again). The command itself
    runs with the collector on, those objects frozen out of its passes."""
    global _PAUSED
    if _PAUSED:
        _PAUSED = False
        gc.freeze()
        gc.enable()


# Plain help layout (rich_markup_mode=None) and plain tracebacks: typer's rich layout loads
# rich's console, markdown and pygments (about 0.1 s, half of `npukit --help`); usage errors
# are main()'s one line either way.
app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                  help="npukit: compile models to an int8 NPU, simulate them bit-exactly, and time them.")


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


def archs(show: Optional[str] = typer.Option(None, "--show", help="print one preset (or TOML file) as TOML")):
    """List the architecture presets with their main parameters."""
    if show:
        from .arch import load_arch
        typer.echo(load_arch(show).to_toml())
        return
    from .arch.catalog import summary_lines
    for line in summary_lines():
        typer.echo(line)


def _ray_address(value: str | None) -> str | None:
    if value is not None and value != "auto" and not value.startswith("ray://"):
        raise typer.BadParameter(f"{value!r} is neither auto nor ray://HOST:PORT")
    return value


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


# in the order `npukit --help` lists them
for _name, _command in (("archs", archs), ("compile", compile_cmd), ("run", run), ("profile", profile),
                        ("report", report), ("export", export), ("info", info), ("disasm", disasm),
                        ("explore", explore), ("pareto", pareto)):
    app.command(_name, cls=_Command)(_command)


def _command_path() -> str:
    """"npukit COMMAND" for the command named on the command line (else "npukit")."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)     # the app has several commands
    names = group.commands
    return " ".join(["npukit", *[a for a in sys.argv[1:] if a in names][:1]])


_MAIN = False   # running as the npukit command (main), not called in-process
_PAUSED = False  # main paused the cycle collector until the command runs (_resume_gc)

# The command's process defaults, each left as the environment sets it: BLAS on one thread
# (npukit computes on one core, see npukit.threads; starting OpenBLAS's thread pool costs
# about 40 ms of CPU when numpy loads) and no search for pydantic plugins (a read of every
# installed distribution's entry points, about 20 ms, when the arch schema is built).
PROCESS_DEFAULTS = {"OPENBLAS_NUM_THREADS": "1", "PYDANTIC_DISABLE_PLUGINS": "__all__"}


def main() -> None:
    global _MAIN, _PAUSED
    _MAIN = True
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)
    debug = "--debug" in sys.argv
    if debug:
        sys.argv.remove("--debug")
    _PAUSED = gc.isenabled()
    gc.disable()
    try:
        _run(debug)
    finally:
        if _PAUSED:     # no command ran (help, a usage error)
            _PAUSED = False
            gc.enable()


def _run(debug: bool) -> None:
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

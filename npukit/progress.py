"""Progress of long work, and clean terminal output, without tying the library to a terminal.

The compiler (and any long loop) calls `stage("calibrate", done, total)`; nothing happens
unless a caller opened `status()`, which shows the stage as a rich status line on stderr
when stderr is a terminal (tests and pipes stay clean). rich is imported only then.
"""
from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterable, Iterator, Sequence, TypeVar

Reporter = Callable[[str], None]
_reporter: ContextVar[Reporter | None] = ContextVar("npukit_progress", default=None)
T = TypeVar("T")
_live_console = None        # the console of the status line on screen, if any


def stage(name: str, done: int | None = None, total: int | None = None) -> None:
    """Report the stage under way (with `done` of `total` steps when counted)."""
    report = _reporter.get()
    if report is not None:
        report(name if total is None else f"{name} {done}/{total}")


def counted(name: str, items: Sequence[T]) -> Iterator[T]:
    """`items` one by one, reporting "name i/n" before each."""
    for i, item in enumerate(items):
        stage(name, i + 1, len(items))
        yield item


@contextmanager
def reporting(report: Reporter) -> Iterator[None]:
    """Send every stage() inside the block to `report` (a callable taking the stage's text)."""
    token = _reporter.set(report)
    try:
        yield
    finally:
        _reporter.reset(token)


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def status(what: str, enabled: bool | None = None) -> Iterator[None]:
    """Show "what: <stage>" as a status line on stderr while the block runs (only on a
    terminal unless `enabled` says otherwise)."""
    if not (interactive() if enabled is None else enabled):
        yield
        return
    global _live_console
    from rich.console import Console
    from rich.live import Live
    from rich.spinner import Spinner
    console = Console(stderr=True)
    spinner = Spinner("dots", what, style="green")
    # stderr is not redirected through rich (it would wrap a long warning): warnings go to
    # console.print above the status line instead (see _warning_line)
    with Live(spinner, console=console, transient=True, redirect_stderr=False, refresh_per_second=12.5):
        _live_console = console
        try:
            with reporting(lambda text: spinner.update(text=f"{what}: {text}")):
                yield
        finally:
            _live_console = None


def bar(items: Iterable[T], what: str, total: int | None = None) -> Iterator[T]:
    """`items`, with a rich progress bar on stderr when it is a terminal (for example loops)."""
    if not interactive():
        yield from items
        return
    from rich.progress import track
    yield from track(items, description=what, total=total, console=None, transient=True)


VERBOSE_ENV = "NPUKIT_VERBOSE"      # set by the command line's --verbose; seen by worker processes


def verbose() -> bool:
    """Whether other libraries' log lines should get through (see the CLI's --verbose)."""
    return bool(os.environ.get(VERBOSE_ENV))


def one_line_warnings() -> None:
    """Show every warning (npukit's or another library's) as one "WARNING: message" line on
    stderr, without the source path and line Python adds."""
    warnings.showwarning = _warning_line


def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    text = " ".join(str(message).split())
    if _live_console is not None:
        from rich.text import Text
        _live_console.print(Text(f"WARNING: {text}", style="bold yellow"), soft_wrap=True)
        return
    if sys.stderr.isatty():
        text = f"\x1b[1;33mWARNING: {text}\x1b[0m"
    else:
        text = f"WARNING: {text}"
    print(text, file=sys.stderr, flush=True)


@contextmanager
def native_quiet() -> Iterator[None]:
    """Hide what native code prints on stderr in the block (LiteRT's "INFO: Created TensorFlow
    Lite XNNPACK delegate for CPU.") unless verbose()."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)

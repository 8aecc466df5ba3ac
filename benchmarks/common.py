"""Shared helpers for the benchmark scripts: peer subprocesses, measurement, table printing.

Each peer runs as a subprocess of its own venv's python (benchmarks/setup_peers.sh) through a
small driver in benchmarks/peers/ that prints one JSON object on its last stdout line.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEERS_DIR = Path(os.environ.get("NPUKIT_PEERS", Path.home() / ".cache" / "npukit" / "peers"))


class PeerMissing(RuntimeError):
    pass


def peer_python(name: str) -> Path:
    py = PEERS_DIR / name / "bin" / "python"
    if not py.exists():
        raise PeerMissing(f"peer '{name}' is not installed under {PEERS_DIR}: run "
                          f"`bash benchmarks/setup_peers.sh {name}` first")
    return py


def bytecode_env(cache: Path) -> dict[str, str]:
    """The environment with byte-code cached under `cache` (PYTHONPYCACHEPREFIX, even where
    PYTHONDONTWRITEBYTECODE is set), as an installed package has it: a child's first run fills
    the cache, later children's imports read it instead of compiling every module again."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(cache)}


def run_json(argv: list[str], timeout: float = 3600, env: dict[str, str] | None = None) -> dict:
    """Run a driver and parse the JSON object on its last stdout line."""
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=REPO, check=False, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{argv[1]} printed no JSON:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def run_peer(name: str, driver: str, *args: str, timeout: float = 3600) -> dict:
    return run_json([str(peer_python(name)), str(HERE / "peers" / driver), *map(str, args)], timeout)


def run_self(driver: str, *args: str, timeout: float = 3600, env: dict[str, str] | None = None) -> dict:
    """Run one of our own measurement drivers in a fresh interpreter (clean peak RSS)."""
    return run_json([sys.executable, str(HERE / driver), *map(str, args)], timeout, env)


class Stopwatch:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    return (f"{date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
            f"load average {load} (the machine is shared: timings vary with it)")


def table(headers: list[str], rows: list[list], title: str = "") -> str:
    cells = [[str(h) for h in headers]] + [[_fmt(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = [title] if title else []
    for j, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) if j and _numeric(c) else c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:.0f}"
    return str(v)


def _numeric(s: str) -> bool:
    return s.replace(".", "", 1).replace("-", "", 1).replace("x", "").replace("%", "").isdigit()


def status_mib(key: str) -> float:
    """VmRSS / VmHWM of this process (ru_maxrss would include the parent's RSS at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0

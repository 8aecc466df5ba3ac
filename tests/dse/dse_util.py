"""Helpers for the explorer's tests (a module of its own: no clash between conftest modules)."""
from __future__ import annotations

from pathlib import Path

from npukit.dse.store import RUN_COLUMNS, Store

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"


def models_toml(ds_cnn: Path) -> str:
    return (f'[[models]]\npath = "{DIGITS}"\ninput_shapes = {{ x = [1, 1, 8, 8] }}\n\n'
            f'[[models]]\npath = "{ds_cnn}"\n')


def write_space(dir: Path, body: str, ds_cnn: Path, name: str = "space.toml") -> Path:
    path = dir / name
    path.write_text(body + "\n" + models_toml(ds_cnn))
    return path


def stored(db: Path) -> dict[str, dict]:
    """Rows by key, without the columns that describe how the run went (times)."""
    with Store(db) as s:
        return {r["key"]: {k: v for k, v in r.items() if k not in RUN_COLUMNS} for r in s.rows()}


def slow_evaluate(task, graph):
    """`evaluate` after NPUKIT_TEST_SLEEP seconds, leaving a mark KEY-PID in NPUKIT_TEST_MARKS."""
    import os
    import time

    from npukit.dse.point import evaluate
    Path(os.environ["NPUKIT_TEST_MARKS"], f"{task.key}-{os.getpid()}").touch()
    time.sleep(float(os.environ["NPUKIT_TEST_SLEEP"]))
    return evaluate(task, graph)


def run_explorer(space: str, db: str, workers: int) -> None:
    """A subprocess's explorer on `slow_evaluate` (inline for workers = 0); prints the summary."""
    from npukit.dse import InlineExecutor, PoolExecutor, explore, load_space
    executor = PoolExecutor(workers) if workers else InlineExecutor()
    s = explore(load_space(space), db, executor, progress=False, evaluate_fn=slow_evaluate)
    print(f"computed={s.computed} reused={s.reused} lost={s.lost}", flush=True)


def explorer_argv(space: Path, db: Path, workers: int) -> list[str]:
    import sys
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import dse_util; "
            f"dse_util.run_explorer({str(space)!r}, {str(db)!r}, {workers})")
    return [sys.executable, "-c", code]

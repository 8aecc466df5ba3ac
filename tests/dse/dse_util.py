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

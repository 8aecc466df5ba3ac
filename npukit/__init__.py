"""npukit: an embedded NPU as software — compiler, bit-exact simulator, timing, exploration.

    prog = npukit.compile("model.onnx", arch="npu-m", calibration={"x": samples})
    outputs = prog.run({"x": image}); print(prog.profile()); prog.save("model.npub")

`compile`, `load`, `loads` and `info` are the entry points; `CompiledModel` runs, times,
reports and saves a compiled model; errors a user can cause are `npukit.errors.NpukitError`.
The names are imported on first use, so `import npukit` (and the command line's start) stays cheap.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_LAZY = {"CompiledModel": "api", "ModelInfo": "report.info", "compile": "api", "info": "api", "load": "api",
         "loads": "api", "CompileOptions": "codegen.context", "Reuse": "codegen.reuse", "InputError": "errors", "NpukitError": "errors"}
__all__ = ["__version__", *_LAZY]

if TYPE_CHECKING:
    from .api import CompiledModel, compile, info, load, loads  # noqa: F401
    from .codegen.context import CompileOptions  # noqa: F401
    from .codegen.reuse import Reuse  # noqa: F401
    from .errors import InputError, NpukitError  # noqa: F401
    from .report.info import ModelInfo  # noqa: F401


def __getattr__(name: str):
    """An entry point, imported from its module on first access (then a plain attribute)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'npukit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

"""npukit: an embedded NPU as software — compiler, bit-exact simulator, timing, exploration.

    prog = npukit.compile("model.onnx", arch="npu-m", calibration={"x": samples})
    outputs = prog.run({"x": image}); print(prog.profile()); prog.save("model.npub")

`compile`, `load`, `loads` and `info` are the entry points; `CompiledModel` runs, times,
reports and saves a compiled model; errors a user can cause are `npukit.errors.NpukitError`.
The names are imported on first use, so `import npukit` (and the command line's start) stays cheap.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_names

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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals())

"""npukit: an embedded NPU as software — compiler, bit-exact simulator, timing, exploration.

    prog = npukit.compile("model.onnx", arch="npu-m", calibration={"x": samples})
    outputs = prog.run({"x": image}); print(prog.profile()); prog.save("model.npub")

`compile`, `load`, `loads` and `info` are the entry points; `CompiledModel` runs, times,
reports and saves a compiled model; errors a user can cause are `npukit.errors.NpukitError`.
"""
__version__ = "0.1.0"

from .api import CompiledModel, ModelInfo, compile, info, load, loads  # noqa: E402,F401
from .codegen.context import CompileOptions  # noqa: E402,F401
from .errors import InputError, NpukitError  # noqa: E402,F401

"""npukit: an embedded NPU as software — compiler, bit-exact simulator, timing, exploration."""
__version__ = "0.1.0"

from .api import CompiledModel, ModelInfo, compile, info, load  # noqa: E402,F401
from .codegen.context import CompileOptions  # noqa: E402,F401

"""npukit: an embedded NPU as software — compiler, bit-exact simulator, timing, exploration."""
__version__ = "0.1.0"

from .api import CompiledModel, compile, load  # noqa: E402,F401

"""The fixed values of compile()'s string arguments, in a module that imports only `typing`:
the command line builds its option types from them before anything heavy is loaded."""
from typing import Literal, get_args

Method = Literal["auto", "hybrid", "minmax", "percentile", "mse", "entropy"]    # calibration: see quant.calibrate
HostPolicy = Literal["auto", "never"]        # operators the NPU cannot run: see compiler.compile_model
METHODS: tuple[str, ...] = get_args(Method)
HOST_POLICIES: tuple[str, ...] = get_args(HostPolicy)

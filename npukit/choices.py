"""The fixed values of compile()'s string arguments, in a module that imports nothing: the
command line builds its option types from them before anything heavy is loaded."""

METHODS = ("minmax", "percentile", "mse", "entropy")       # calibration: see quant.calibrate
HOST_POLICIES = ("auto", "never")                # operators the NPU cannot run: see compiler.compile_model

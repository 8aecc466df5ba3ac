"""Imported once by the local pool's fork server (workers.py), which then forks every worker:
what evaluating a point loads (the back end, the timing model, the profile, the functional
simulator with numba's compiled entry point read from its on-disk cache), so that each worker
starts with it in memory instead of importing and loading it itself."""
from __future__ import annotations

import atexit
import gc
import os

from ..codegen.lower import lower_program   # noqa: F401  (loaded for the workers)
from ..cost.timing import simulate          # noqa: F401
from ..report.profile import build_profile  # noqa: F401
from ..sim.functional import Simulator      # noqa: F401
from ..sim.interpreter import entry
from ..sim.reference import run_reference   # noqa: F401
from . import workers                       # noqa: F401

entry()
gc.freeze()     # the loaded objects stay out of the workers' collections: no copy of their pages on write
# The server holds nothing to clean up, but it holds the explorer's stdout and stderr until it
# exits (when the explorer has): it skips the interpreter's teardown of all it loaded. (Its
# workers leave by os._exit, as every forked multiprocessing child does: this never runs there.)
atexit.register(os._exit, 0)

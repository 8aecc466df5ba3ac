"""Imported by the explorer before it forks its pool's workers (workers.py): the back end a
point's evaluation uses (lowering, the timing model, the profile, the functional simulator's
plain path and the integer reference), so that each worker starts with it loaded instead of
importing it itself. The compiled simulator is not among it: a worker loads it only when its
checks need it (dse/check.py)."""
from __future__ import annotations

from ..codegen.lower import lower_program   # noqa: F401  (loaded for the workers)
from ..cost.timing import simulate          # noqa: F401
from ..report.profile import build_profile  # noqa: F401
from ..sim.functional import Simulator      # noqa: F401
from ..sim.reference import run_reference   # noqa: F401
from . import check                         # noqa: F401

"""Design-space exploration: sweep (arch, model, compiler options) points into SQLite, find Pareto fronts."""
from .executors import InlineExecutor, PointLimits, PoolExecutor, RayExecutor, make_executor
from .pareto import OBJECTIVES, Objective, pareto_front, pareto_mask, parse_objectives
from .runner import SweepSummary, explore
from .space import Space, load_space, parse_space
from .store import Store

__all__ = ["InlineExecutor", "OBJECTIVES", "Objective", "PointLimits", "PoolExecutor", "RayExecutor", "Space", "Store",
           "SweepSummary", "explore", "load_space", "make_executor", "pareto_front", "pareto_mask",
           "parse_objectives", "parse_space"]

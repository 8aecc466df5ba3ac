from .graph import *  # noqa: F401,F403
from .shapes import infer  # noqa: F401
from .verify import verify  # noqa: F401

"""Every error a user can cause has a class here; the CLI prints its message on one line."""


class NpukitError(Exception):
    """Base: a clear, user-facing problem (never a bug)."""


class ModelError(NpukitError):
    """The model file is malformed or inconsistent."""


class UnsupportedOpError(ModelError):
    """An operator (or an attribute of it) that npukit cannot compile."""


class ArchError(NpukitError):
    """An architecture config that is malformed or impossible."""


class BinaryError(NpukitError):
    """A .npub file that is corrupt, truncated or of another version."""


class InputError(NpukitError):
    """Inputs given to run/compile do not match the model."""


class ScheduleError(NpukitError):
    """A layer that cannot be mapped onto the chosen architecture."""

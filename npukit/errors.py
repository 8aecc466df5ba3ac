"""Every error a user can cause has a class here; the CLI prints its message on one line."""


class NpukitError(Exception):
    """Base: a clear, user-facing problem (never a bug)."""


class ModelError(NpukitError):
    """The model file is malformed or inconsistent."""


class UnsupportedOpError(ModelError):
    """An operator (or an attribute of it) that npukit cannot compile. `node` names the
    source ONNX (or TFLite) node when known: the compiler may retry with it on the host."""

    def __init__(self, message: str, node: str | None = None):
        super().__init__(message)
        self.node = node

    def at(self, source: tuple[str, ...]) -> "UnsupportedOpError":
        """This error, naming the first source node of the IR node that raised it."""
        if self.node is None and source:
            self.node = source[0]
        return self


class ArchError(NpukitError):
    """An architecture config that is malformed or impossible."""


class BinaryError(NpukitError):
    """A .npub file that is corrupt, truncated or of another version."""


class InputError(NpukitError):
    """Inputs given to run/compile do not match the model."""


class IndexRangeError(ModelError):
    """A GATHER id outside its table at run time: the same one-line error from the host
    kernel, the integer reference and the NPU's GATHER instruction."""


class ScheduleError(NpukitError):
    """A layer that cannot be mapped onto the chosen architecture."""


def first_line(text: object, limit: int = 300) -> str:
    """`text` (a message, or an exception) cut to its first line and `limit` characters, for
    messages that quote another library; an exception with no message gives its class name."""
    lines = str(text).strip().splitlines()
    line = lines[0] if lines else (type(text).__name__ if isinstance(text, BaseException) else "")
    return line if len(line) <= limit else line[:limit] + "..."


def did_you_mean(word: str, known) -> str:
    """' (did you mean 'x'?)' for the closest of `known` to a misspelt `word`, else ''."""
    import difflib
    close = difflib.get_close_matches(str(word), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class DynamicBatchWarning(UserWarning):
    """An input's leading dimension is left open by the model; it is compiled for batch 1."""

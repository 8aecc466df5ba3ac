"""One-line messages for an arch config that fails validation: pydantic's errors reduced to
the dotted key at fault, what is wrong with it and, for a misspelt key, the closest known one."""
from __future__ import annotations

from typing import Any, Mapping, get_args

from pydantic import BaseModel, ValidationError

from ..errors import did_you_mean


def one_line(exc: ValidationError, data: Mapping[str, Any], root: type[BaseModel]) -> str:
    """The first problem of a failed validation of `data` against `root` (the arch config) as one
    line: the dotted key, what is wrong, a close known key for a misspelt one."""
    errors = exc.errors(include_url=False)
    hints = [did_you_mean(str(e["loc"][-1]), _known_keys(root, e["loc"][:-1])) if e["type"] == "extra_forbidden" else ""
             for e in errors]
    # a misspelt key also makes the right one missing: name the misspelling first
    err, hint = next(((e, h) for e, h in zip(errors, hints) if h), (errors[0], hints[0]))
    loc = _loc_name(err["loc"], data)
    if err["type"] == "extra_forbidden":
        problem = "unknown key" + hint
    elif err["type"] == "missing":
        problem = "missing required key"
    else:
        problem = f"{err['msg']} (got {_short(err.get('input'))})"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return f"arch config: {loc or '<top>'}: {problem}{more}"


def _short(value: Any, width: int = 60) -> str:
    """A repr cut to `width` characters (a huge list or number stays on one short line)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    text = " ".join(repr(value).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the config table at `loc` (list indices and validator names skipped)."""
    cls: Any = root
    for part in loc:
        if not isinstance(part, str) or "[" in part:
            continue
        field = cls.model_fields.get(part) if isinstance(cls, type) and issubclass(cls, BaseModel) else None
        if field is None:
            return []
        cls = field.annotation
        for arg in (cls, *get_args(cls)):       # tuple[Region, ...], Optional[...]
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                cls = arg
                break
    return list(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else []


def _loc_name(loc: tuple[Any, ...], data: Any) -> str:
    out: list[str] = []
    node = data
    for part in loc:
        if isinstance(part, int):
            name = node[part].get("name") if isinstance(node, list) and part < len(node) \
                and isinstance(node[part], dict) else None
            out[-1] += f"[{name!r}]" if isinstance(name, str) else f"[{part}]"
        elif isinstance(part, str) and "[" in part:  # pydantic validator wrapper names
            continue
        else:
            out.append(str(part))
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(out)

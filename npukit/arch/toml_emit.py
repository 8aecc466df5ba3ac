"""A tiny TOML writer for the arch config's fixed shape: top-level scalars, tables, one level
of sub-tables written inline, and arrays of tables. Read back with tomllib."""
from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(k: str) -> str:
    return k if _BARE_KEY.match(k) else json.dumps(k)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write non-finite float {v} to TOML")
        return repr(v)
    if isinstance(v, str):
        # JSON escapes are valid TOML escapes; TOML also forbids a raw DEL
        return json.dumps(v, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _is_table_array(v: Any) -> bool:
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(isinstance(x, dict) for x in v)


def dumps(data: dict[str, Any]) -> str:
    lines = [f"{_key(k)} = {_value(v)}" for k, v in data.items()
             if v is not None and not isinstance(v, dict) and not _is_table_array(v)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines += ["", f"[{_key(k)}]"]
            lines += [f"{_key(sk)} = {_value(sv)}" for sk, sv in v.items() if sv is not None]
        elif _is_table_array(v):
            for item in v:
                lines += ["", f"[[{_key(k)}]]"]
                lines += [f"{_key(sk)} = {_value(sv)}" for sk, sv in item.items() if sv is not None]
    return "\n".join(lines) + "\n"

"""Find and load an arch config: a preset name (npukit/arch/presets/NAME.toml) or a TOML path."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

from npukit.arch.config import Arch
from npukit.errors import ArchError

_PRESETS = resources.files("npukit.arch") / "presets"


def list_presets() -> list[str]:
    return sorted(p.name[: -len(".toml")] for p in _PRESETS.iterdir() if p.name.endswith(".toml"))


def preset_text(name: str) -> str:
    if name not in list_presets():
        raise ArchError(f"unknown arch preset {name!r} (presets: {', '.join(list_presets())})")
    return (_PRESETS / f"{name}.toml").read_text(encoding="utf-8")


def load_arch(name_or_path: str | Path) -> Arch:
    """A preset by name, or a TOML file by path."""
    if isinstance(name_or_path, str) and name_or_path in list_presets():
        return Arch.from_toml_text(preset_text(name_or_path))
    path = Path(name_or_path)
    if not path.is_file():
        raise ArchError(f"unknown arch {str(name_or_path)!r}: neither a preset "
                        f"({', '.join(list_presets())}) nor an existing TOML file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ArchError(f"cannot read arch config {str(path)!r}: {exc}") from None
    return Arch.from_toml_text(text)

"""Find and load an arch config: a preset name (npukit/arch/presets/NAME.toml) or a TOML path."""
from __future__ import annotations

from pathlib import Path

from npukit.arch.catalog import list_presets, preset_text
from npukit.arch.config import Arch
from npukit.errors import ArchError


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

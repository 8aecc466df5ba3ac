"""Every import in npukit points down the stages (docs/design.md, "Layering").

Each module belongs to a layer: its package (`npukit/<package>/...`) or, for a top-level
module, the module itself. A module may import its own layer and the layers listed before
it, nothing after. Imports at any depth count (an import inside a function too); only an
`if TYPE_CHECKING:` block is exempt, as it never runs. The package root `npukit/__init__.py`
is the lazy public facade (`npukit.compile`, ...): `import npukit` counts as importing `api`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import npukit

# Lowest first. Quoted in docs/design.md; change both together.
LAYERS = (
    ("errors", "limits", "choices", "version", "threads", "progress", "npyio", "lazy"),   # leaf utilities
    ("arch",),
    ("ir",),
    ("isa",),
    ("kernels",),
    ("opt",),
    ("quant",),
    ("frontend",),
    ("cost",),
    ("schedule",),
    ("codegen",),
    ("sim",),
    ("report",),
    ("export",),
    ("measure", "ptq", "compiler"),
    ("api",),
    ("dse",),
    ("models",),
    ("cli", "cli_args", "cli_model", "cli_options"),
    ("testing",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}
ROOT = Path(npukit.__file__).parent


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    """The layer of a module path inside npukit ("npukit.quant.calibrate" -> "quant")."""
    parts = module.split(".")
    if len(parts) == 1:
        return "api"
    return parts[1]


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skip


def imports(path: Path, root: Path = ROOT) -> list[tuple[str, int]]:
    """(imported npukit module, line) for every import in the file, at any depth."""
    module = module_name(path, root)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_nodes(tree)
    out = []
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            target = ".".join(base + (node.module.split(".") if node.module else []))
            if target == "npukit":   # `from npukit import x`: the submodule x, or the facade
                out += [(_root_name(a.name), node.lineno) for a in node.names]
            else:
                out.append((target, node.lineno))
    return [(t, line) for t, line in out if t == "npukit" or t.startswith("npukit.")]


def _root_name(name: str) -> str:
    if (ROOT / name).is_dir() or (ROOT / f"{name}.py").exists():
        return f"npukit.{name}"
    return "npukit.version" if name == "__version__" else "npukit"


def violations() -> list[tuple[str, str, int, str, str]]:
    """(file, imported module, line, its layer, the imported layer) of each upward import."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        module = module_name(path)
        if module == "npukit":
            continue
        here = layer(module)
        for target, line in imports(path):
            there = layer(target)
            if RANK[there] > RANK[here]:
                out.append((str(path.relative_to(ROOT.parent)), target, line, here, there))
    return out


def test_every_module_has_a_layer():
    unknown = {layer(module_name(p)) for p in ROOT.rglob("*.py")} - set(RANK)
    assert not unknown, f"modules outside the declared layers: {sorted(unknown)}"


def test_imports_point_down_the_layers():
    found = [f"{path}:{line}: {here} imports {there} ({target})" for path, target, line, here, there in violations()]
    assert not found, "imports pointing up the layers:\n" + "\n".join(found)


def test_the_checker_sees_lazy_imports(tmp_path):
    """An import inside a function counts; one under `if TYPE_CHECKING:` does not."""
    path = tmp_path / "npukit" / "isa" / "probe.py"
    path.parent.mkdir(parents=True)
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..sim import functional\n"
                    "def f():\n    from ..codegen import lower\n    from npukit import compile\n")
    assert sorted(imports(path, tmp_path / "npukit")) == [("npukit", 6), ("npukit.codegen", 5)]

"""The package layout is the architecture: every import points down a layer.

mlops_core/ (config, policy, errors, identity) < stores < people < evidence < governance
< rollout < worker < demo < commands. The core never imports streamlit or ui; ui and pages
lay out what the core returns and never reach the command line. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["", "stores", "people", "evidence", "governance", "rollout", "worker", "demo", "commands"]


def _python_files(*folders: str) -> list[Path]:
    files: list[Path] = []
    for folder in folders:
        files += sorted(p for p in (ROOT / folder).rglob("*.py") if "migrations" not in p.parts)
    return files


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str) -> set[str]:
    """Every absolute module a file imports, at the top or inside functions."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from mlops_core import audit` imports the module mlops_core.audit.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_of(module: str) -> int | None:
    """The layer of a mlops_core module, or None for anything outside mlops_core."""
    parts = module.split(".")
    if parts[0] != "mlops_core":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if len(parts) > 1 and parts[1] == "__main__":
        return LAYERS.index("commands")
    return 0


def _existing(module: str) -> bool:
    """Whether `module` names a module or package (not a name imported from one)."""
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layering_violations(module: str, source: str) -> list[str]:
    own = layer_of(module)
    assert own is not None
    problems = []
    for target in sorted(imported_modules(source)):
        if target.split(".")[0] in {"streamlit", "ui", "pages"}:
            problems.append(f"{target} (the core never imports the UI)")
            continue
        layer = layer_of(target)
        if layer is not None and layer > own and _existing(target):
            problems.append(f"{target} (layer {LAYERS[layer]!r} is above {LAYERS[own]!r})")
    return problems


@pytest.mark.parametrize(
    "path", _python_files("mlops_core"), ids=lambda p: str(p.relative_to(ROOT))
)
def test_core_imports_point_down(path: Path) -> None:
    assert layering_violations(_module_name(path), path.read_text()) == []


@pytest.mark.parametrize(
    "path", [ROOT / "app.py", *_python_files("ui", "pages")], ids=lambda p: str(p.relative_to(ROOT))
)
def test_ui_imports_only_the_core_and_its_helpers(path: Path) -> None:
    forbidden = []
    for target in imported_modules(path.read_text()):
        top = target.split(".")[0]
        if top == "pages" or target.startswith(("mlops_core.commands", "mlops_core.demo")):
            forbidden.append(target)
        if path.parent.name == "charts" and top == "streamlit":
            forbidden.append(target)
    assert sorted(forbidden) == []


def test_the_checker_catches_an_upward_import() -> None:
    source = "def f():\n    from mlops_core.governance import gates\n    import streamlit\n"
    problems = layering_violations("mlops_core.stores.probe", source)
    assert any("mlops_core.governance" in p for p in problems)
    assert any("streamlit" in p for p in problems)
    assert layering_violations("mlops_core.governance.probe", source) == [
        "streamlit (the core never imports the UI)"
    ]


def test_every_package_init_only_explains_the_package() -> None:
    for init in (ROOT / "mlops_core").rglob("__init__.py"):
        if "migrations" in init.parts:
            continue
        tree = ast.parse(init.read_text())
        docstring = ast.get_docstring(tree)
        assert docstring, f"{init.relative_to(ROOT)} has no docstring"
        assert len(tree.body) == 1, f"{init.relative_to(ROOT)} holds code besides its docstring"

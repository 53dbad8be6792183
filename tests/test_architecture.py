"""Layers import downward only (docs/architecture.md): checked on the source with ``ast``, so no import is executed."""

import ast
from pathlib import Path

import graftlab

SRC = Path(graftlab.__file__).parent

# package -> graftlab packages it may import (itself always allowed)
ALLOWED = {
    "core": set(),
    "data": {"core"},
    "backbones": {"core"},
    "evaluation": {"core"},
    "reporting": {"core"},
    "training": {"core", "backbones", "data"},
    "strategies": {"core", "data", "backbones"},
    "packaging": {"core", "data", "backbones", "strategies"},
    "explain": {"core", "data", "backbones", "strategies", "packaging", "tracking"},
    "selection": {"core", "data", "backbones", "strategies", "evaluation", "training"},
    "tracking": {"core", "data", "backbones", "strategies", "packaging", "reporting", "evaluation"},
    "serving": {"core", "data", "backbones", "strategies", "packaging", "tracking", "explain", "evaluation"},
    "monitoring": {"core", "data", "backbones", "strategies", "packaging", "tracking", "evaluation", "serving"},
    "study": {"core", "data", "backbones", "strategies", "training", "evaluation", "reporting", "packaging",
              "tracking", "selection", "explain"},
    "lifecycle": {"core", "data", "evaluation", "packaging", "tracking", "serving", "monitoring", "study"},
}
TOP_LEVEL = {"estimator", "testing", "__init__", "cli", "__main__"}


def imported_packages(path: Path, package: str) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package path
                parts = list(path.relative_to(SRC).parts[:-1])
                base = parts[: len(parts) - (node.level - 1)] if node.level - 1 <= len(parts) else []
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from .. import x" at top: x is a package
                    target = [node.names[0].name]
                found.add(target[0])
            elif node.module and node.module.startswith("graftlab."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("graftlab."):
                    found.add(alias.name.split(".")[1])
    return found - {package}


def test_layers_import_downward_only():
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        package = path.relative_to(SRC).parts[0].removesuffix(".py")
        if package in TOP_LEVEL:
            continue
        assert package in ALLOWED, f"new package {package!r}: add it to ALLOWED with its layer"
        layers = set(ALLOWED) | {"cli", "estimator"}
        bad = (imported_packages(path, package) & layers) - ALLOWED[package]
        if bad:
            problems.append(f"{path.relative_to(SRC)} imports {sorted(bad)}")
    assert not problems, "\n".join(problems)


def test_no_unsafe_loading_in_source():
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        assert "pickle.load" not in text, path
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"

"""The evaluation layer stays pure: numpy/scipy/sklearn and graftlab.core only, nothing at import time."""

import ast
import subprocess
import sys
from pathlib import Path

import graftlab.evaluation as evaluation

PACKAGE = Path(evaluation.__file__).parent
ALLOWED_TOP = {"numpy", "scipy", "sklearn", "graftlab"} | set(sys.stdlib_module_names)


def imported_modules(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_only_allowed_imports():
    bad = []
    for path in sorted(PACKAGE.glob("*.py")):
        for name in imported_modules(path):
            top = name.split(".")[0]
            if top not in ALLOWED_TOP or (top == "graftlab" and not name.startswith("graftlab.core")):
                bad.append(f"{path.name}: {name}")
    assert not bad, f"evaluation must import only numpy/scipy/sklearn/graftlab.core: {bad}"


def test_importing_does_not_load_torch_or_training():
    code = (
        "import sys, graftlab.evaluation; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('graftlab.training', 'graftlab.strategies'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_all_is_complete():
    public = {n for n in dir(evaluation) if not n.startswith("_") and n not in {"annotations"}}
    modules = {"bootstrap", "calibration", "evaluate", "gates", "learning_curves", "metrics", "slices"}
    assert set(evaluation.__all__) == public - modules

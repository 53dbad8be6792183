"""tracking sits below study/cli/reporting: it imports only core and data from graftlab, and nothing heavy
at import time (MLflow is imported when a tracking function runs)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from graftlab import tracking

PACKAGE = Path(tracking.__file__).parent
ALLOWED_GRAFTLAB = ("graftlab.core", "graftlab.data")


def _imports(path: Path):
    package = "graftlab.tracking"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against graftlab.tracking
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                yield f"{base}.{node.module}" if node.module else base
            else:
                yield node.module


def test_tracking_imports_only_lower_layers():
    bad = []
    for path in sorted(PACKAGE.glob("*.py")):
        for name in _imports(path):
            if name.startswith("graftlab.") and not name.startswith(("graftlab.tracking", *ALLOWED_GRAFTLAB)):
                bad.append(f"{path.name}: {name}")
    assert not bad, f"tracking must not import upper layers: {bad}"


def test_importing_tracking_loads_neither_mlflow_nor_torch():
    code = ("import sys, graftlab.tracking; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('mlflow', 'torch', 'sklearn')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_all_is_complete():
    public = {n for n in dir(tracking) if not n.startswith("_") and n != "annotations"}
    modules = {"card", "mlflow_log", "registry", "reproduce", "store"}
    assert set(tracking.__all__) == public - modules

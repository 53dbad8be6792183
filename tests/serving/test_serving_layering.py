"""Serving loads packaged artifacts only: it never imports training, study or (eagerly) tracking code."""

import ast
import subprocess
import sys
from pathlib import Path

import graftlab.serving

FORBIDDEN = ("graftlab.training", "graftlab.study", "graftlab.estimator")


def test_serving_sources_do_not_import_training_or_study():
    root = Path(graftlab.serving.__file__).parent
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                target = "graftlab." + ".".join(["serving"][: 2 - node.level] + ([node.module] if node.module else []))
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
            elif isinstance(node, ast.Import):
                target = ",".join(a.name for a in node.names)
            else:
                continue
            assert not any(f in target for f in FORBIDDEN), (path.name, target)
            assert "tracking" not in target, (path.name, target)  # only imported lazily, by name


def test_loading_and_serving_a_model_imports_no_training_code(packaged, tmp_path):
    code = (
        "import sys\n"
        "from graftlab.serving import ServeConfig, Service, create_app\n"
        f"s = Service(ServeConfig(model={str(packaged['champion'])!r}, log_db={str(tmp_path / 'x.db')!r}))\n"
        "s.load(); create_app(s.cfg, s); s.log.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('graftlab.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    loaded = out.stdout
    assert "graftlab.serving" in loaded and "graftlab.packaging" in loaded
    for name in (*FORBIDDEN, "graftlab.tracking"):
        assert f"'{name}" not in loaded, name

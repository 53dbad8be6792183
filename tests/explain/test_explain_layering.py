"""graftlab.explain is light to import and never pulls in training or study code (serving imports it)."""

import subprocess
import sys


def test_import_is_light_and_stays_below_training():
    code = (
        "import sys, graftlab.explain as e; "
        "bad = [m for m in sys.modules if m in ('torch', 'captum', 'sklearn') "
        "or m.startswith(('graftlab.training', 'graftlab.study', 'graftlab.serving', 'graftlab.cli'))]; "
        "assert not bad, bad; "
        "assert set(e.__all__) == {'METHODS', 'class_tokens', 'explain', 'report_examples'}"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_explaining_a_saved_model_does_not_import_training(packaged_dir):
    code = (
        "import sys; from graftlab.packaging import load_model; from graftlab.explain import explain; "
        f"m = load_model({str(packaged_dir)!r}); explain(m, 'tasty tea', method='ig'); "
        "bad = [m for m in sys.modules if m.startswith(('graftlab.training', 'graftlab.study'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)

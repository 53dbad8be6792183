import subprocess
import sys
from pathlib import Path

LEGACY = Path(__file__).parents[1] / "fixtures" / "results_v0" / "validation_study.json"


def test_reporting_imports_no_upper_layers_and_nothing_heavy_at_import():
    code = (
        "import sys; import graftlab.reporting as r; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'; "
        "import json, tempfile, pathlib; "
        f"r.render_report(json.loads(pathlib.Path({str(LEGACY)!r}).read_text()), pathlib.Path(tempfile.mkdtemp())); "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('graftlab.training', 'graftlab.strategies', "
        "'graftlab.study', 'graftlab.evaluation', 'graftlab.backbones', 'matplotlib.pyplot'))]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)

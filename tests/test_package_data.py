"""Every file under a ``templates`` folder ships in the wheel: pyproject's package-data names it."""

import fnmatch
import tomllib
from pathlib import Path

import graftlab

SRC = Path(graftlab.__file__).parent
PYPROJECT = SRC.parents[1] / "pyproject.toml"


def test_every_template_is_package_data():
    globs = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]["graftlab"]
    templates = [p.relative_to(SRC).as_posix() for p in SRC.rglob("templates/*") if p.is_file()]
    assert {"core/templates/page.css", "monitoring/templates/monitor.html.j2"} <= set(templates)
    assert [t for t in templates if not any(fnmatch.fnmatch(t, g) for g in globs)] == []

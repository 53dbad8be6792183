"""Render the report in headless Chromium (Debian's package) and check the page actually paints."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from graftlab.reporting import render_report

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def screenshot(html: Path, png: Path, height: int = 4000) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--screenshot={png}", f"--window-size=1280,{height}",
             html.resolve().as_uri()],
            capture_output=True, text=True, timeout=60,
        )


@pytest.mark.browser
def test_report_renders_in_chromium(binary_results, tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    Image = pytest.importorskip("PIL.Image")
    html = render_report(binary_results, tmp_path)
    png = tmp_path / "report.png"
    proc = screenshot(html, png)
    assert "Uncaught" not in proc.stderr, proc.stderr
    assert png.exists(), f"no screenshot; chromium said:\n{proc.stderr[-2000:]}"
    assert png.stat().st_size > 20_000
    with Image.open(png) as img:
        colours = img.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None and len(colours) > 50

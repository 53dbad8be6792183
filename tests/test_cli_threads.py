"""`graft` lets torch's OpenMP threads sleep while they wait (bench/omp_wait.py), except for `graft serve`, and never
overrides a policy the environment sets or one torch has already read."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = """
import os, sys
from graftlab.cli import threads_sleep_while_waiting
if sys.argv[1] == "torch-first":
    import torch  # noqa: F401
print(threads_sleep_while_waiting(sys.argv[2:]), os.environ.get("OMP_WAIT_POLICY"), "torch" in sys.modules)
"""


def _probe(*args: str, policy: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    out = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.parametrize("args", [["study", "study.yaml"], ["--debug", "validate", "s.yaml"], []])
def test_commands_set_the_passive_policy_before_torch_loads(args):
    assert _probe("cli-first", *args) == "True PASSIVE False"  # importing graftlab.cli loads no torch


def test_serve_the_environment_and_a_loaded_torch_keep_their_policy():
    assert _probe("cli-first", "serve", "runs/x/model") == "False None False"
    assert _probe("cli-first", "study", "s.yaml", policy="ACTIVE") == "False ACTIVE False"
    assert _probe("torch-first", "study", "s.yaml") == "False None True"

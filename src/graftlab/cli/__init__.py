"""The ``graft`` command line: one root app; each module of this package adds its commands to it.

A command module defines functions decorated with ``@app.command()`` (or mounts a sub-app); importing
it is what registers them, and :func:`main` imports every module here.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

from .app import EXIT_USER_ERROR, app, report_error

__all__ = ["app", "main", "EXIT_USER_ERROR", "report_error"]


def _load_commands() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("app", "__main__"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_commands()  # command modules only declare commands; their heavy imports happen when one runs


#: commands whose forward passes come first and usually have a machine to themselves: their threads keep spinning
LATENCY_FIRST = frozenset({"serve"})


def threads_sleep_while_waiting(args: list[str]) -> bool:
    """Let torch's OpenMP threads sleep instead of spin while they wait for work (``OMP_WAIT_POLICY=PASSIVE``), unless
    the environment sets a policy, torch is already loaded (the policy is read once, when it loads) or the command is
    ``graft serve``. Returns whether it set the policy.

    Sleeping threads are faster while another process competes for the cores and slow forward passes down on an
    idle machine, hence not for the server (``bench/omp_wait.py``; docs/benchmarks.md#cpu-threads, B34-B35).
    """
    if "torch" in sys.modules or "OMP_WAIT_POLICY" in os.environ:
        return False
    command = next((a for a in args if not a.startswith("-")), None)
    if command in LATENCY_FIRST:
        return False
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``graft`` command."""
    threads_sleep_while_waiting(sys.argv[1:] if argv is None else argv)
    from .app import main as run

    run(argv)

"""The ``graft`` command line: one root app; each module of this package adds its commands to it.

A command module defines functions decorated with ``@app.command()`` (or mounts a sub-app); importing
it is what registers them, and :func:`main` imports every module here.
"""

from __future__ import annotations

import importlib
import pkgutil

from .app import EXIT_USER_ERROR, app, report_error

__all__ = ["app", "main", "EXIT_USER_ERROR", "report_error"]


def _load_commands() -> None:
    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("app", "__main__"):
            importlib.import_module(f"{__name__}.{info.name}")


_load_commands()  # command modules only declare commands; their heavy imports happen when one runs


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``graft`` command."""
    from .app import main as run

    run(argv)

"""The ``graft`` command line.

Every command runs inside :class:`_GraftGroup`, which turns a :class:`GraftError` (the user's to fix)
into one red paragraph on stderr and exit code 2; ``--debug`` (or ``GRAFT_DEBUG=1``) adds the
traceback. Ctrl-C ends in one line and exit code 130. Any other exception is a bug and keeps its
traceback. Usage errors exit 2 (click's rule).
To add a command, decorate a function with ``@app.command()`` or mount a sub-app with
``app.add_typer(...)``; the error handling applies to it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from ..core.errors import GraftError

__all__ = ["app", "exit_interrupted", "main", "report_error", "stdout", "stderr", "EXIT_INTERRUPTED",
           "EXIT_USER_ERROR"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # what a shell reports for a process stopped by Ctrl-C (128 + SIGINT)


#: columns for tables written to a file or a pipe (a log, CI), where rich would use 80 and cut strategy names
LOG_WIDTH = 160


def stdout() -> Console:
    """The console for a command's output; written to a file or pipe it is LOG_WIDTH wide (COLUMNS, when set, wins)."""
    console = Console(highlight=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = LOG_WIDTH
    return console


def stderr() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _debug_requested(ctx: click.Context | None) -> bool:
    if os.environ.get("GRAFT_DEBUG", "").strip() not in ("", "0"):
        return True
    while ctx is not None:
        if ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return False


def report_error(err: GraftError, debug: bool = False) -> None:
    """Print ``err`` as one red paragraph on stderr (with the traceback first when ``debug``)."""
    console = stderr()
    if debug:
        console.print_exception(show_locals=False)
    console.print(Text(f"Error: {err}", style="red"))


def exit_interrupted(message: str = "Interrupted before it finished; run the command again to start over.") -> NoReturn:
    """After Ctrl-C: ``message`` as one yellow line on stderr, then exit 130 (no traceback, no click "Aborted!")."""
    stderr().print(Text(message, style="yellow"))
    raise typer.Exit(EXIT_INTERRUPTED)


class _GraftGroup(TyperGroup):
    """The root group: user errors from any command become exit code 2 with a readable message, Ctrl-C exit 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GraftError as err:
            report_error(err, debug=_debug_requested(ctx))
            raise typer.Exit(EXIT_USER_ERROR) from None
        except KeyboardInterrupt:  # a command with more to say (graft study: how to resume) handles it itself
            exit_interrupted()


app = typer.Typer(
    cls=_GraftGroup,
    name="graft",
    help="Transfer learning you can defend: run a study, ship the winner, watch it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _print_version(asked: bool) -> None:
    if asked:
        from .. import __version__

        typer.echo(f"graft {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error (also GRAFT_DEBUG=1).")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the graftlab version and exit.", callback=_print_version,
                           is_eager=True)
    ] = False,
) -> None:
    """graftlab: adapt a pretrained model to a small labeled dataset, with honest evidence."""


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``graft`` command."""
    try:
        app(args=argv, prog_name="graft")
    except GraftError as err:  # raised outside a command (e.g. while parsing); normally handled in the group
        report_error(err, debug=_debug_requested(None) or "--debug" in (argv or []))
        raise SystemExit(EXIT_USER_ERROR) from None

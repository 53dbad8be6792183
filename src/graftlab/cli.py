"""The ``graft`` command line.

Every command runs inside :class:`_GraftGroup`, which turns a :class:`GraftError` (the user's to fix)
into one red paragraph on stderr and exit code 2; ``--debug`` (or ``GRAFT_DEBUG=1``) adds the
traceback. Any other exception is a bug and keeps its traceback. Usage errors exit 2 (click's rule).
To add a command, decorate a function with ``@app.command()`` or mount a sub-app with
``app.add_typer(...)``; the error handling applies to it unchanged.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from .core.errors import GraftError

__all__ = ["app", "main", "render_prepared", "report_error"]

EXIT_USER_ERROR = 2


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
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
    console = _stderr()
    if debug:
        console.print_exception(show_locals=False)
    console.print(Text(f"Error: {err}", style="red"))


class _GraftGroup(TyperGroup):
    """The root group: user errors from any command become exit code 2 with a readable message."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except GraftError as err:
            report_error(err, debug=_debug_requested(ctx))
            raise typer.Exit(EXIT_USER_ERROR) from None


app = typer.Typer(
    cls=_GraftGroup,
    name="graft",
    help="Transfer learning you can defend: run a study, ship the winner, watch it.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


@app.callback()
def _root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of an error (also GRAFT_DEBUG=1).")
    ] = False,
) -> None:
    """graftlab: adapt a pretrained model to a small labeled dataset, with honest evidence."""


def _length_fn_for(cfg: Any) -> tuple[Any, int | None]:
    """The tokenizer length function and max length for the overlong check.

    A hook for the backbones layer: returns ``(None, None)`` (check skipped) until backbones exist.
    """
    return None, None


def _stats(d: dict[str, Any]) -> str:
    return f"{d['min']} / {d['median']:.0f} / {d['p95']:.0f} / {d['max']}"


def render_prepared(prepared: Any, console: Console) -> None:
    """Print the data summary (rows, class counts, length stats, fingerprint) and the check table."""
    from .data.checks import checks_table

    summary = prepared.summary
    table = Table(title="Data summary", title_justify="left")
    table.add_column("split", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("class counts", overflow="fold")
    table.add_column("chars min/med/p95/max", justify="right")
    table.add_column("words min/med/p95/max", justify="right")
    for name, n in summary["rows"].items():
        counts = ", ".join(f"{label}: {c}" for label, c in summary["class_counts"][name].items())
        length = summary["length"][name]
        table.add_row(name, str(n), Text(counts), _stats(length["chars"]), _stats(length["words"]))
    console.print(table)
    for key, src in summary["sources"].items():
        console.print(Text(f"{key}: {src['name']} ({src['rows']} rows, ids from {src['first_id']})"))
    console.print(Text(f"labels: {', '.join(summary['label_names'])}"))
    console.print(Text(f"fingerprint: {prepared.fingerprint}"))
    console.print(checks_table(prepared.checks))


@app.command()
def validate(
    study: Annotated[Path, typer.Argument(help="The study YAML file.", show_default=False)],
) -> None:
    """Check a study config and its data (no training): summary, splits and data checks."""
    from .core.config import load_config
    from .data.checks import DataChecksFailed, checks_table
    from .data.prepare import prepare_data

    cfg = load_config(study)
    length_fn, max_length = _length_fn_for(cfg)
    console = _stdout()
    try:
        prepared = prepare_data(cfg.data, length_fn=length_fn, max_length=max_length)
    except DataChecksFailed as err:
        console.print(checks_table(err.results))
        raise
    console.print(Text(f"Study {cfg.name!r}: config is valid.", style="bold"))
    render_prepared(prepared, console)
    passed = sum(c.status == "ok" for c in prepared.checks)
    console.print(Text(f"All data checks passed or were resolved ({passed}/{len(prepared.checks)} ok).", style="green"))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``graft`` command."""
    try:
        app(args=argv, prog_name="graft")
    except GraftError as err:  # raised outside a command (e.g. while parsing); normally handled in the group
        report_error(err, debug=_debug_requested(None) or "--debug" in (argv or []))
        raise SystemExit(EXIT_USER_ERROR) from None

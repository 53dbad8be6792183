"""``graft registry list | show | promote | rollback`` and ``graft reproduce RUN_ID``."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from ..core.errors import ConfigError
from .app import app, stdout

if TYPE_CHECKING:
    from ..core.results import Interval
    from ..tracking.registry import ModelVersion

__all__ = ["registry_app", "registry_store", "tracking_store"]

registry_app = typer.Typer(
    help="The model registry on MLflow: versions, the champion and challenger aliases, promotion and rollback.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")

UriOption = Annotated[
    str | None,
    typer.Option("--tracking-uri", help="MLflow tracking URI (default: $GRAFT_TRACKING_URI, else sqlite under .graft/).",
                 show_default=False),
]


_URI_HINT = ("Check --tracking-uri (or $GRAFT_TRACKING_URI): sqlite:///PATH/mlflow.db for a local store (graft study "
             "writes .graft/mlflow.db), or http(s)://HOST:PORT of a running MLflow server.")


def _check_server(uri: str) -> None:
    """Fail in seconds when an http(s) tracking URI does not answer (MLflow retries for minutes before it gives up)."""
    import socket
    from urllib.parse import urlparse

    parts = urlparse(uri)
    if parts.scheme not in ("http", "https"):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.create_connection((parts.hostname or "", port), timeout=5).close()
    except (OSError, ValueError) as e:
        raise ConfigError(f"The MLflow tracking server {uri} does not answer ({getattr(e, 'strerror', None) or e}). "
                          f"Start it, or point elsewhere. {_URI_HINT}") from None


@contextmanager
def tracking_store(tracking_uri: str | None) -> Iterator[str]:
    """Yield the resolved tracking URI; a store MLflow cannot use becomes a :class:`ConfigError` naming it."""
    from ..tracking import resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri)
    _check_server(uri)
    try:
        yield uri
    except Exception as err:
        # imported only now: graftlab sets MLflow's environment before mlflow is first imported (tracking.store.client)
        from mlflow.exceptions import MlflowException
        from sqlalchemy.exc import SQLAlchemyError

        if not isinstance(err, MlflowException | SQLAlchemyError):
            raise
        text = str(getattr(err, "orig", None) or getattr(err, "message", None) or err).strip()
        reason = text.split(". ")[0].splitlines()[0] if text else type(err).__name__  # MLflow's messages run long
        raise ConfigError(f"The MLflow tracking store {uri} cannot be used ({reason}). {_URI_HINT}") from None


def registry_store(tracking_uri: str | None, *refs: str | None) -> AbstractContextManager[Any]:
    """:func:`tracking_store` when one of ``refs`` is a registry reference; model folders need no tracking store."""
    from ..serving.resolve import is_registry_ref

    return tracking_store(tracking_uri) if any(r and is_registry_ref(r) for r in refs) else nullcontext()


def _aliases(v: ModelVersion) -> Text:
    text = Text()
    for i, a in enumerate(v.aliases):  # one per line: the column stays narrow enough for an 80-column terminal
        text.append(("\n" if i else "") + f"@{a}", style="bold green" if a == "champion" else "bold yellow")
    return text


def _gates(value: str | None) -> Text:
    return Text(value or "-", style={"passed": "green", "failed": "red"}.get(value or "", ""))


def _when(iso: str | None) -> str:
    """``2026-12-01T15:25:13.123+00:00`` -> ``2026-12-01 15:25Z`` (to the minute: enough to tell versions apart)."""
    if not iso:
        return "-"
    return iso[:16].replace("T", " ") + ("Z" if iso.endswith("+00:00") else "")


def _num(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and math.isfinite(x) else "-"


@registry_app.command("list")
def list_(tracking_uri: UriOption = None) -> None:
    """Every registered model and its versions: aliases, gates, strategy, data fingerprint, created."""
    from ..tracking import list_models, resolve_tracking_uri
    from ..tracking.registry import RegisteredModel

    with tracking_store(tracking_uri):
        models = [RegisteredModel.from_dict(m) for m in list_models(tracking_uri)]
    console = stdout()
    if not models:
        console.print(Text(f"No registered models at {resolve_tracking_uri(tracking_uri)} yet. Run a study first."))
        return
    table = Table(title=f"Registered models ({resolve_tracking_uri(tracking_uri)})", title_justify="left",
                  box=box.SIMPLE_HEAD, collapse_padding=True)
    name_width = min(32, max(len(m.name) for m in models))  # the name is what a reader looks for: never squeezed away
    for col in ("model", "version", "aliases", "gates", "strategy", "created"):  # data fingerprint: graft registry show
        table.add_column(col, justify="right" if col == "version" else "left", no_wrap=True,
                         min_width=name_width if col == "model" else None)
    for m in models:
        for v in reversed(m.versions):
            table.add_row(m.name, str(v.version), _aliases(v), _gates(v.gates), v.strategy or "-", _when(v.created))
    console.print(table)


@registry_app.command()
def show(name: Annotated[str, typer.Argument(help="The registered model name.")], tracking_uri: UriOption = None) -> None:
    """One model: each version with its test metrics (value and CI), gates, aliases and promotion history."""
    from ..tracking import show as show_model
    from ..tracking.registry import RegisteredModel

    with tracking_store(tracking_uri):
        info = RegisteredModel.from_dict(show_model(name, tracking_uri))
    console = stdout()
    aliases = ", ".join(f"{k} → v{v}" for k, v in sorted(info.aliases.items())) or "none"
    console.print(Text(f"{info.name}  (aliases: {aliases})", style="bold"))
    metrics = sorted({m for v in info.versions for m in v.metrics if m in _SHOWN})
    table = Table(title_justify="left")
    for col in ("version", "aliases", "gates", "strategy", *metrics, "created", "notes"):
        table.add_column(col, justify="right" if col in metrics or col == "version" else "left")
    for v in reversed(info.versions):
        cells = [_score(v.metrics.get(m)) for m in metrics]
        table.add_row(str(v.version), _aliases(v), _gates(v.gates), v.strategy or "-", *cells, _when(v.created),
                      Text(_notes(v)))
    console.print(table)


def _score(value: Interval | None) -> str:
    """``0.812 [0.780, 0.843]``; the CI only when both its ends were logged."""
    if value is None:
        return "-"
    if value.ci_low is None or value.ci_high is None:
        return _num(value.value)
    return f"{_num(value.value)} [{_num(value.ci_low)}, {_num(value.ci_high)}]"


_SHOWN = ("accuracy", "macro_f1", "roc_auc", "log_loss", "ece_calibrated")


def _notes(v: ModelVersion) -> str:
    notes = []
    if v.previous_champion:
        notes.append(f"replaced v{v.previous_champion}")
    if v.promotion_forced:
        notes.append("FORCED")
    if v.promotion_reason:
        notes.append(f"reason: {v.promotion_reason}")
    if v.rolled_back_to:
        notes.append(f"rolled back to v{v.rolled_back_to}")
    return "; ".join(notes)


@registry_app.command()
def promote(
    name: Annotated[str, typer.Argument(help="The registered model name.")],
    version: Annotated[int, typer.Argument(help="The version to make champion.")],
    force: Annotated[bool, typer.Option("--force", help="Promote although the version's gates failed (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded on the version.")] = None,
    tracking_uri: UriOption = None,
) -> None:
    """Make VERSION the champion. A version whose gates failed needs --force --reason "..."."""
    from ..tracking import promote as promote_version
    from ..tracking.registry import Promotion

    with tracking_store(tracking_uri):
        res = Promotion.from_dict(promote_version(name, version, force=force, reason=reason, tracking_uri=tracking_uri))
    if not res.changed:
        stdout().print(Text(f"Version {version} of {name} is already the champion; nothing changed."))
        return
    before = f" (was v{res.previous_champion}; graft registry rollback {name} returns to it)" if res.previous_champion else ""
    stdout().print(Text(f"{name}@champion → version {version}{before}.", style="green"))


@registry_app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="The registered model name.")],
    reason: Annotated[str | None, typer.Option("--reason", help="Why; recorded on the version rolled back from.")] = None,
    tracking_uri: UriOption = None,
) -> None:
    """Return the champion alias to the version that held it before the current one."""
    from ..tracking import rollback as rollback_model
    from ..tracking.registry import Rollback

    with tracking_store(tracking_uri):
        res = Rollback.from_dict(rollback_model(name, reason=reason, tracking_uri=tracking_uri))
    stdout().print(Text(f"{name}@champion rolled back: version {res.from_version} → version {res.to_version}.",
                        style="green"))


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="The MLflow run id of a logged study (or its graftlab run id).")],
    tolerance: Annotated[float, typer.Option("--tolerance", help="Largest absolute metric difference that matches (0: exact).", min=0.0)] = 0.0,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Where the reproduced run folder goes (default .graft/reproduce).")] = None,
    output_dir: Annotated[str | None, typer.Option("--output-dir", hidden=True, help="The old spelling of -o/--output.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = False,
    trust_code: Annotated[bool, typer.Option("--trust-code", help="Run the Python function of a data source of kind "
                                                                  "'python' in the logged config (refused without it).")] = False,
    tracking_uri: UriOption = None,
) -> None:
    """Re-run a logged study from its config and split (same data fingerprint) and compare its test metrics.

    A config whose data come from Python code (source kind 'python') runs that code: it needs --trust-code.
    Exits 0 when every strategy's metrics match within the tolerance, 1 otherwise, 2 on a user error.
    """
    from ..tracking.reproduce import reproduce as run_reproduce
    from .inputs import one_output

    output_dir = one_output(output, output_dir, "--output-dir")

    def runner(cfg: Any, prepared: Any) -> dict[str, Any]:
        from ..study import Study

        return Study(cfg, progress=progress).run(prepared=prepared).results

    with tracking_store(tracking_uri):
        report = run_reproduce(run_id, runner, tracking_uri=tracking_uri, tolerance=tolerance, output_dir=output_dir,
                               trust_code=trust_code)
    console = stdout()
    table = Table(title=f"Reproduction of run {report.run_id} (data {report.fingerprint[:12]}, tolerance {tolerance:g})",
                  title_justify="left")
    for col in ("strategy", "values compared", "matched", "max |diff|"):
        table.add_column(col, justify="left" if col == "strategy" else "right")
    for name, s in report.by_strategy().items():
        compared, matched = s["compared"], s["matched"]
        table.add_row(name, str(compared), str(matched), f"{s['max_diff']:.3g}",
                      style=None if matched == compared else "red")
    console.print(table)
    for r in [r for r in report.rows if not r["match"]][:10]:
        console.print(Text(f"  {r['strategy']} {r['metric']} {r['field']}: recorded {r['recorded']!r}, "
                           f"reproduced {r['reproduced']!r}", style="red"))
    if report.recorded_winner != report.reproduced_winner:
        console.print(Text(f"Winner differs: recorded {report.recorded_winner}, reproduced {report.reproduced_winner}.",
                           style="red"))
    verdict = "reproduced: every test metric matches" if report.matches else "NOT reproduced: metrics differ"
    console.print(Text(f"{verdict}. Reproduced run folder: {report.reproduced_run_dir}",
                       style="bold green" if report.matches else "bold red"))
    if not report.matches or report.recorded_winner != report.reproduced_winner:
        raise typer.Exit(1)

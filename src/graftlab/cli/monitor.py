"""``graft monitor NAME`` (drift + live performance → report, alerts, exit code) and ``graft retrain NAME``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import BaseModel, Field
from rich.table import Table
from rich.text import Text

from .app import app, stdout
from .registry import UriOption, registry_store, tracking_store

__all__ = ["monitor", "retrain"]

_POLICY = "Alert policy"
_DEFAULT_DB = Path(".graft/predictions.db")


def _fmt(x: object) -> str:
    return f"{x:.3g}" if isinstance(x, float) else "–" if x is None else str(x)


# -- what the command prints of a monitor report (monitoring's report dict, read once) ------------------
class _Model(BaseModel):
    name: str


class _Window(BaseModel):
    description: str
    n_requests: int


class _DriftTest(BaseModel):
    name: str
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    rejected: bool = False
    available: bool = False
    message: str = ""


class _Drift(BaseModel):
    tests: list[_DriftTest] = Field(default_factory=list)


class _Live(BaseModel):
    value: float
    ci_low: float
    ci_high: float


class _AgainstValidation(BaseModel):
    """A live metric (with its bootstrap CI) and the same metric on validation."""

    live: _Live
    validation: float


class _Performance(BaseModel):
    n_labeled: int = 0
    comparison: dict[str, _AgainstValidation] | None = None
    message: str = ""


class _Webhook(BaseModel):
    url_host: str | None = None  # the report keeps the host only: a webhook URL often holds a token
    sent: bool = False
    error: str | None = None


class _Report(BaseModel):
    model: _Model
    window: _Window
    drift: _Drift
    performance: _Performance
    notes: list[str] = Field(default_factory=list)
    webhook: _Webhook | None = None


@app.command()
def monitor(
    name: Annotated[str, typer.Argument(help="NAME, NAME@alias or NAME:version in the registry, or a packaged model folder.",
                                        show_default=False)],
    window: Annotated[str, typer.Option(help="Recent traffic to check: a duration (1d, 12h, 30m, 2w), a number of "
                                             "requests (500) or 'all'.")] = "1d",
    log_db: Annotated[Path, typer.Option(help="The SQLite prediction log written by graft serve.")] = _DEFAULT_DB,
    webhook: Annotated[str | None, typer.Option(help="POST a JSON summary to this URL when an alert fires.",
                                                show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Report folder (default "
                                                                      ".graft/monitor/NAME/<UTC time>).",
                                                show_default=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", hidden=True, help="The old spelling of -o/--output.")] = None,
    alpha: Annotated[float, typer.Option(help="False-alarm rate of the drift alarm over all tests (Holm).",
                                         rich_help_panel=_POLICY)] = 0.05,
    min_ratio: Annotated[float, typer.Option(help="Alert when a live metric is below this share of validation.",
                                             rich_help_panel=_POLICY)] = 0.90,
    max_drop: Annotated[float, typer.Option(help="Alert when a live metric is this much below validation (0.05 = 5 "
                                                 "points).", rich_help_panel=_POLICY)] = 0.05,
    basis: Annotated[str, typer.Option(help="Judge live metrics by their 'point' estimate or by 'ci_high' (alert only "
                                            "when the whole CI is past the threshold).", rich_help_panel=_POLICY)] = "point",
    min_labels: Annotated[int, typer.Option(help="Feedback labels needed to judge live performance.",
                                            rich_help_panel=_POLICY)] = 30,
    min_requests: Annotated[int, typer.Option(help="Requests needed to test for drift.", rich_help_panel=_POLICY)] = 30,
    permutations: Annotated[int, typer.Option(help="Permutations of the MMD test.", rich_help_panel=_POLICY)] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of permutations, bootstrap and sampling.", rich_help_panel=_POLICY)] = 0,
    tracking_uri: UriOption = None,
) -> None:
    """Compare recent traffic with the model's reference profile: embedding drift (MMD, domain classifier),
    confidence (KS), predicted classes (chi-square), input length and empty inputs, and live accuracy / macro-F1
    from feedback. Writes monitor.json + monitor.html; exits 1 when an alert fired, 0 otherwise."""
    from ..monitoring import MonitorPolicy, run_monitor
    from .inputs import one_output

    out = one_output(output, out, "--out")
    policy = MonitorPolicy.from_dict({"alpha": alpha, "min_ratio": min_ratio, "max_drop": max_drop, "basis": basis,
                                      "min_labels": min_labels, "min_requests": min_requests,
                                      "permutations": permutations, "seed": seed})
    with registry_store(tracking_uri, name):
        result = run_monitor(name, log_db, window, policy, out_dir=out, webhook=webhook, tracking_uri=tracking_uri)
    r = _Report.model_validate(result.report)
    console = stdout()
    console.print(Text(f"{r.model.name}: {r.window.n_requests} requests ({r.window.description}), "
                       f"{r.performance.n_labeled} with feedback", style="bold"))
    table = Table(title="Drift tests (Holm over the available tests)", title_justify="left")
    for col in ("test", "statistic", "p", "Holm p", "verdict"):
        table.add_column(col)
    for t in r.drift.tests:
        verdict = (Text("drift", style="red") if t.rejected else Text("ok", style="green")) if t.available \
            else Text(t.message, style="dim")
        table.add_row(t.name, _fmt(t.statistic), _fmt(t.p_value), _fmt(t.p_adjusted), verdict)
    console.print(table)
    for name_, c in (r.performance.comparison or {}).items():
        console.print(Text(f"live {name_} {c.live.value:.3f} [{c.live.ci_low:.3f}, {c.live.ci_high:.3f}] vs "
                           f"validation {c.validation:.3f}"))
    if r.performance.message:
        console.print(Text(r.performance.message, style="dim"))
    for note in r.notes:
        console.print(Text(note, style="dim"))
    for a in result.alerts:
        console.print(Text(f"ALERT ({a.kind}): {a.message}", style="bold red"))
    if not result.alerts:
        console.print(Text("No alert.", style="green"))
    if r.webhook is not None:  # a failure shows the whole URL the user gave
        w = r.webhook
        console.print(Text(f"webhook to {w.url_host}: sent" if w.sent else f"webhook to {webhook} failed "
                           f"({w.error}); check the URL and that it accepts a JSON POST.",
                           style="dim" if w.sent else "yellow"))
    console.print(Text(f"Report: {result.paths['html']}  (JSON: {result.paths['json']})"))
    raise typer.Exit(result.exit_code)


@app.command()
def retrain(
    name: Annotated[str, typer.Argument(help="The registered model; its champion is the incumbent.", show_default=False)],
    min_new_labels: Annotated[int, typer.Option(help="Usable new feedback labels needed (labeled, with logged text, "
                                                     "not already in the training data).")] = 500,
    canary_percent: Annotated[float | None, typer.Option(help="Hand a better challenger to a canary with this share of "
                                                              "traffic instead of promoting it.", show_default=False)] = None,
    log_db: Annotated[Path, typer.Option(help="The prediction log with feedback.")] = _DEFAULT_DB,
    holdout_fraction: Annotated[float, typer.Option(help="Newest share of the new data kept as the fresh holdout.")] = 0.3,
    val_fraction: Annotated[float, typer.Option(help="Next newest share of the new data added to validation.")] = 0.2,
    min_holdout: Annotated[int, typer.Option(help="Least number of fresh holdout requests.")] = 20,
    monitor_report: Annotated[Path | None, typer.Option(help="The monitor.json that triggers the retrain (default: the "
                                                             "latest report of NAME).", show_default=False)] = None,
    fresh_monitor: Annotated[bool, typer.Option("--fresh-monitor", help="Run the monitor now instead of reading the "
                                                                        "latest report.")] = False,
    window: Annotated[str, typer.Option(help="Monitor window when the monitor runs here.")] = "all",
    force: Annotated[bool, typer.Option("--force", help="Retrain even when no alert fired (recorded).")] = False,
    data: Annotated[Path | None, typer.Option(help="The champion's original data (.csv, .tsv, .jsonl, .parquet or "
                                                   ".xlsx) when its study config has no data source.",
                                              show_default=False)] = None,
    encoding: Annotated[str | None, typer.Option("--encoding", help="The text encoding of --data (default: utf-8).")] = None,
    sep: Annotated[str | None, typer.Option("--sep", help="The field separator of a .csv --data (default: ',').")] = None,
    allow_changed_data: Annotated[bool, typer.Option("--allow-changed-data", help="Go on when the original data's "
                                                     "fingerprint differs from the champion's.")] = False,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show the study's progress bars.")] = True,
    trust_code: Annotated[bool, typer.Option("--trust-code", help="Run the Python function of a data source of kind "
                                                                  "'python' in the champion's study config (refused "
                                                                  "without it).")] = False,
    tracking_uri: UriOption = None,
) -> None:
    """Rerun the champion's study on its data plus new labeled traffic, register the result as challenger, and
    promote it only when it is significantly better on a fresh holdout (else keep the champion and record why).

    A study config whose data come from Python code (source kind 'python') runs that code: it needs --trust-code."""
    from ..lifecycle import RetrainPolicy
    from ..lifecycle import retrain as run_retrain
    from .inputs import read_table_arg

    policy = RetrainPolicy.from_dict({"min_new_labels": min_new_labels, "canary_percent": canary_percent,
                                      "holdout_fraction": holdout_fraction, "val_fraction": val_fraction,
                                      "min_holdout": min_holdout, "require_alert": not force,
                                      "allow_changed_data": allow_changed_data, "window": window})
    original = read_table_arg(data, "--data", encoding=encoding, sep=sep) if data is not None else None
    with tracking_store(tracking_uri):
        outcome = run_retrain(name, log_db=log_db, policy=policy, tracking_uri=tracking_uri,
                              monitor_report=monitor_report, fresh_monitor=fresh_monitor, progress=progress,
                              original=original, trust_code=trust_code)
    console = stdout()
    style = {"promote": "bold green", "canary": "bold yellow", "keep": "bold", "skipped": "dim"}[outcome.decision]
    console.print(Text(f"{outcome.decision}: {outcome.reason}", style=style))
    if outcome.challenger_version is not None:
        console.print(Text(f"challenger: {name} version {outcome.challenger_version}"))
    if outcome.command:
        console.print(Text(f"next: {outcome.command}"))
    console.print(Text(f"Decision record: {outcome.record_dir / 'decision.md'}"))

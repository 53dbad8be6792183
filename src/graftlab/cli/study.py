"""``graft validate`` and ``graft study`` (``graft predict`` is in :mod:`.predict`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..core.errors import DataError
from .app import app, exit_interrupted, stdout

if TYPE_CHECKING:
    from ..data.prepare import LengthStats

__all__ = ["render_prepared", "render_result"]


def _stats(d: LengthStats) -> str:
    return f"{d.min} / {d.median:.0f} / {d.p95:.0f} / {d.max}"


def render_prepared(prepared: Any, console: Console) -> None:
    """Print the data summary (rows, class counts, length stats, fingerprint) and the check table."""
    from ..data.checks import checks_table
    from ..data.prepare import DataSummary

    summary = DataSummary.from_dict(prepared.summary)
    table = Table(title="Data summary", title_justify="left")
    table.add_column("split", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("class counts", overflow="fold")
    units = ("height", "width") if "height" in next(iter(summary.length.values()), {}) else ("chars", "words")
    for unit in units:  # images: pixels; text: characters and words
        table.add_column(f"{unit} min/med/p95/max" + (" px" if unit in ("height", "width") else ""), justify="right")
    for name, n in summary.rows.items():
        counts = ", ".join(f"{label}: {c}" for label, c in summary.class_counts[name].items())
        length = summary.length[name]
        table.add_row(name, str(n), Text(counts), _stats(length[units[0]]), _stats(length[units[1]]))
    console.print(table)
    for key, src in summary.sources.items():
        console.print(Text(f"{key}: {src.name} ({src.rows} rows, ids from {src.first_id})"))
    if summary.time_order is not None:
        from ..reporting.formatting import fmt_periods

        console.print(Text(f"split by time on {summary.time_order.column!r}: {fmt_periods(summary.time_order.ranges)}"))
    rare = summary.rare_classes
    if rare is not None:
        for target in dict.fromkeys(rare.merged.values()):
            merged = [k for k, v in rare.merged.items() if v == target]
            console.print(Text(f"rare classes merged into {target!r}: {', '.join(map(repr, merged))}"))
        if rare.dropped:
            console.print(Text(f"rare classes left out: {', '.join(map(repr, rare.dropped))}"))
    if summary.classes_without_rows:
        console.print(Text(f"classes left out, every row removed by the checks: "
                           f"{', '.join(map(repr, summary.classes_without_rows))}"))
    console.print(Text(f"labels: {', '.join(summary.label_names)}"))
    console.print(Text(f"fingerprint: {prepared.fingerprint}"))
    console.print(checks_table(prepared.checks))


def _prepare(study: Any, console: Console) -> Any:
    from ..data.checks import DataChecksFailed, checks_table

    try:
        return study.prepare()
    except DataChecksFailed as err:
        console.print(checks_table(err.results))
        raise


def _note_code(cfg: Any, console: Console) -> None:
    """One line when the config runs Python code to read its data (the user wrote it, so it runs; stored configs
    re-read by graft reproduce / graft retrain need --trust-code)."""
    from ..core.trust import code_sources

    found = code_sources(cfg)
    if found:
        console.print(Text(f"Note: this config runs Python code to read its data ({'; '.join(found)}).", style="dim"))


def _overrides(values: list[str] | None) -> dict[str, Any]:
    """``--set KEY=VALUE`` options as {dotted key: value}, each VALUE read as YAML (``1``, ``[a, b]``, ``{k: v}``)."""
    import yaml

    out = {}
    for item in values or []:
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key or "" in key.split("."):
            raise DataError(f"--set expects KEY=VALUE with a dotted KEY (e.g. --set eval.seeds=1). Got {item!r} "
                            "instead.")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise DataError(f"--set {key}: the value {value!r} is not valid YAML ({problem}). Close every bracket and "
                            "brace (a list is [a, b], a mapping {k: v}), or quote a plain text.") from None
    return out


SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set eval.seeds=1 (repeatable).")]


@app.command()
def validate(
    study: Annotated[Path, typer.Argument(help="The study YAML file.", show_default=False)],
    set_: SetOption = None,
) -> None:
    """Check a study config, its strategies, backbone and data (no training): summary, splits, data checks."""
    from ..core.config import load_config
    from ..study import Study

    cfg = load_config(study, _overrides(set_))
    console = stdout()
    _note_code(cfg, console)
    run = Study(cfg)
    prepared = _prepare(run, console)
    console.print(Text(f"Study {cfg.name!r}: config is valid.", style="bold"))
    render_prepared(prepared, console)
    chosen = (f" — the defaults for {cfg.data.modality} data, {run.defaults['regime']}; list 'strategies' in the config "
              "to choose") if run.defaults else ""
    console.print(Text(f"strategies: {', '.join(run.strategies)}{chosen}"))
    from ..strategies import effective_lr

    for name, (_, strategy) in run.strategies.items():  # one rule: train.lr x the strategy's multiplier, or its own lr
        rate = effective_lr(strategy, cfg.train, run.backbone.card.num_layers if strategy.uses_backbone else None)
        if rate is not None:
            console.print(Text(f"learning rate of {name}: {rate.source}"))
    passed = sum(c.status == "ok" for c in prepared.checks)
    console.print(Text(f"All data checks passed or were resolved ({passed}/{len(prepared.checks)} ok).", style="green"))


def render_result(result: Any, console: Console) -> None:
    """The comparison table, the winner, the gates and where the outputs are."""
    from ..core.results import as_results

    r = as_results(result.results)
    metric = r.headline_metric
    table = Table(title=f"Test metrics (mean over seeds, {int(r.config['eval']['confidence'] * 100)}% bootstrap CI)", title_justify="left")
    for col in ("strategy", "kind", "accuracy", metric, "ECE (calibrated)", "val " + metric, "fit s", "ms/ex b1"):
        table.add_column(col, justify="left" if col in ("strategy", "kind") else "right")
    for name, s in r.strategies.items():
        def ci(m: str) -> str:
            v = s.test[m]
            return f"{v.value:.3f} [{v.ci_low:.3f}, {v.ci_high:.3f}]"
        style = "bold green" if name == r.winner else None
        table.add_row(name, s.kind, ci("accuracy"), ci(metric), f"{s.calibration.ece_after:.3f}",
                      f"{s.val.get(metric, float('nan')):.3f}", f"{s.fit_seconds:.1f}",
                      f"{s.latency_ms_b1:.1f}" if s.latency_ms_b1 is not None else "-", style=style)
    console.print(table)
    for name, f in r.failures():
        where = f" (traceback: {f.traceback})" if f.traceback else ""
        console.print(Text(f"{name} could not run and is left out of the comparison: {f.error}{where}", style="red"))
    for f in (r.learning_curve.failed if r.learning_curve is not None else []):
        console.print(Text(f"{f['strategy']} at training size {f['size']} could not run and is left out of the learning "
                           f"curve: {f['error']}", style="red"))
    for a in r.ablation or []:
        if a.error is not None:
            console.print(Text(f"{a.variant} (ablation of {a.knob}) could not run: {a.error}", style="red"))
    if r.timings.budget is not None and r.timings.budget.dropped:  # the study-wide time_budget_s left work out
        console.print(Text(r.timings.budget.reading, style="yellow"))
    console.print(Text(f"Winner: {r.winner} — {r.selection.rule}.", style="bold"))
    for c in r.comparisons:
        console.print(Text(f"  {c.a} − {c.b}: {c.metric} {c.diff:+.3f} [{c.ci_low:+.3f}, {c.ci_high:+.3f}], p={c.p_value:.3g}"))
    for g in r.gates:
        console.print(Text(f"  gate {g.gate}: {'PASS' if g.passed else 'FAIL'} — {g.evidence}",
                           style="green" if g.passed else "red"))
    if not r.gates:
        console.print(Text("No gates declared (eval.gates): nothing was checked against success criteria."))
    if (small := r.small_test_warning()) is not None:
        console.print(Text(f"Warning: {small}", style="yellow"))
    console.print(Text(f"Run folder: {result.run_dir}  (report.html, results.json, decision.md, model/)"))
    if r.tracking is not None and r.tracking.registered:
        from ..tracking.registry import Registration

        reg = Registration.from_dict(r.tracking.registered)
        console.print(Text(f"Registered {reg.name} version {reg.version} (aliases: {', '.join(reg.aliases) or 'none'}); "
                           f"MLflow store: {r.tracking.tracking_uri}"))


def _run(config: Path, console: Console, progress: bool, overrides: dict[str, Any] | None = None,
         resume: Path | None = None) -> Any:
    """Load the config, prepare the data (a new run) and run the study, printing the run folder when it exists and,
    on Ctrl-C, how to continue it (exit 130)."""
    import shlex

    run_dir = [resume.resolve()] if resume is not None else []  # a new run's folder is known once run() made it

    def on_start(folder: Path) -> None:
        run_dir[:] = [folder]
        console.print(Text(f"Run folder: {folder}"))
        console.file.flush()  # seen now in a log file too, not when the run ends

    try:
        from ..core.config import load_config
        from ..study import Study

        cfg = load_config(config, overrides)
        _note_code(cfg, console)
        study = Study(cfg, progress=progress)
        prepared = None
        if resume is None:  # a resumed run prepares its recorded split itself
            prepared = _prepare(study, console)
            render_prepared(prepared, console)
        return study.run(resume=resume, prepared=prepared, on_start=on_start)
    except KeyboardInterrupt:
        if run_dir:
            exit_interrupted(f"Interrupted; continue with: graft study --resume {shlex.quote(str(run_dir[0]))}")
        exit_interrupted("Interrupted before the run started; nothing was written.")


@app.command()
def study(
    config: Annotated[Path | None, typer.Argument(help="The study YAML file.", show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue an interrupted run folder from its checkpoints.")] = None,
    set_: SetOption = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress bars.")] = True,
) -> None:
    """Run a study: data checks, baselines and strategies × seeds, evidence, report, packaged winner.

    Exits 0 when every gate passes, 1 when a gate fails, 2 on a user error, 130 when interrupted (Ctrl-C; continue
    with --resume RUN_DIR).
    """
    console = stdout()
    if resume is not None:
        recorded = resume / "config.yaml"
        if config is not None:
            raise DataError(f"Give a study YAML file or --resume RUN_DIR, not both: a resumed run continues with the "
                            f"config it recorded ({recorded}), so {config} would be ignored.")
        if set_:
            raise DataError(f"--set cannot be used with --resume: a resumed run continues with the config it recorded "
                            f"({recorded}), so that its finished and new trials are comparable. To try other settings, "
                            "start a new study: graft study STUDY.yaml --set KEY=VALUE.")
        if not recorded.is_file():
            raise DataError(f"{resume} is not a graftlab run folder (no config.yaml). Pass runs/<study>/<run-id>.")
        result = _run(recorded, console, progress, resume=resume)
    else:
        if config is None:
            raise DataError("Pass a study YAML file (graft study study.yaml) or --resume RUN_DIR.")
        result = _run(config, console, progress, _overrides(set_))
    render_result(result, console)
    if not result.gates_passed:
        raise typer.Exit(1)


"""``graft models list``, ``graft models show NAME`` and ``graft bakeoff study.yaml``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.table import Table
from rich.text import Text

from .app import app, stdout

if TYPE_CHECKING:
    from ..core.results import Bakeoff

__all__ = ["models_app", "render_bakeoff"]

models_app = typer.Typer(help="The backbone catalog: license, size and latency on this machine.", no_args_is_help=True)
app.add_typer(models_app, name="models")

LatencyOption = Annotated[bool, typer.Option("--latency/--no-latency",
                                             help="Measure latency when this machine has no cached measurement.")]
RefreshOption = Annotated[bool, typer.Option("--refresh", help="Measure latency again even when cached.")]
ThreadsOption = Annotated[int | None, typer.Option("--threads", min=1, help="torch threads for the latency measurement.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _ms(v: Any) -> str:
    return f"{v:.1f}" if isinstance(v, (int, float)) else "-"


def _millions(v: Any) -> str:
    return f"{v / 1e6:.1f}M" if isinstance(v, int) else "-"


def _commercial(v: Any) -> str:
    return {True: "yes", False: "no"}.get(v, "unknown")


@models_app.command("list")
def list_models(latency: LatencyOption = True, refresh: RefreshOption = False, threads: ThreadsOption = None,
                as_json: JsonOption = False) -> None:
    """Every registered backbone: modality, size, license, commercial use and latency on this machine."""
    from ..backbones.catalog import CatalogEntry, catalog

    found = catalog(latency=latency, refresh=refresh, threads=threads)
    if as_json:
        typer.echo(json.dumps(found, indent=1, default=str))
        return
    rows = [CatalogEntry.from_dict(r) for r in found]
    table = Table(title="Backbones", title_justify="left", box=box.SIMPLE_HEAD, caption_justify="left",
                  caption="dim: embedding size; max: max tokens; comm.: commercial use allowed; "
                          "ms b1/b32: the backbone alone, ms per example at batch 1/32 on this machine")
    for col in ("name", "type", "params", "dim", "max", "license", "comm.", "ms b1", "ms b32"):
        table.add_column(col, justify="right" if col in ("params", "dim", "max", "ms b1", "ms b32") else "left",
                         no_wrap=True)
    notes = []
    for r in rows:
        if not r.installed:
            table.add_row(r.name, "-", "-", "-", "-", "-", "-", "-", "-")
            notes.append(Text(f"{r.name}: {r.status}", style="yellow"))
            continue
        table.add_row(r.name, r.modality, _millions(r.params), str(r.hidden_size), str(r.max_length), r.license,
                      _commercial(r.commercial_use), _ms(r.latency_ms_b1), _ms(r.latency_ms_b32))
        source = f"{r.source_package} {r.package_version}" if r.source_package else (r.path or "-")
        notes.append(Text(f"{r.name}: {source}"))
    console = stdout()
    console.print(table)
    for note in notes:
        console.print(note)
    if not latency and any(r.installed and r.latency_ms_b1 is None for r in rows):
        console.print(Text("Latency '-': not measured yet on this machine (run without --no-latency).", style="dim"))


@models_app.command("show")
def show_model(name: Annotated[str, typer.Argument(help="A registered backbone name or a local HF model folder.")],
               latency: LatencyOption = True, refresh: RefreshOption = False, threads: ThreadsOption = None,
               as_json: JsonOption = False) -> None:
    """Everything known about one backbone: card, weights sha256, license, pretraining data, latency."""
    from ..backbones.catalog import CatalogEntry, describe

    found = describe(name, latency=latency, refresh=refresh, threads=threads)
    if as_json:
        typer.echo(json.dumps(found, indent=1, default=str))
        return
    row = CatalogEntry.from_dict(found)
    lat = row.latency
    fields = [
        ("name", row.name), ("modality", row.modality), ("architecture", row.architecture),
        ("parameters", f"{row.params:,}"), ("embedding size", row.hidden_size), ("layers", row.num_layers),
        ("max length", row.max_length), ("source package", row.source_package or "-"),
        ("package version", row.package_version or "-"), ("path", row.path or "-"),
        ("weights sha256", row.weights_sha256 or "-"),
        ("license (SPDX)", f"{row.license} (from {row.license_source})"),
        ("commercial use", _commercial(row.commercial_use)), ("pretraining data", row.pretraining_data),
        ("latency b=1", f"{_ms(row.latency_ms_b1)} ms/example" if lat else "not measured"),
        ("latency b=32", f"{_ms(row.latency_ms_b32)} ms/example" if lat else "not measured"),
    ]
    if lat:
        when = (f"{lat.measured_at} on {lat.machine}, {lat.torch_threads} torch threads, "
                f"{lat.input or str(lat.input_tokens) + '-token input'}")
        fields.append(("measured", when))
    table = Table(show_header=False, title=f"Backbone {row.name}", title_justify="left")
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in fields:
        table.add_row(key, Text(str(value)))
    stdout().print(table)


def render_bakeoff(result: Bakeoff | dict[str, Any]) -> Table:
    """The bake-off (``selection.run_bakeoff``'s result) as a rich table, winner in bold green."""
    from ..core.results import Bakeoff

    result = Bakeoff.model_validate(result)
    table = Table(title="Backbone bake-off", title_justify="left")
    finetune = any(c.finetune_val_accuracy is not None for c in result.candidates)  # set when bakeoff.finetune is on
    cols = ["backbone", "LogME", "probe CV acc", "± (folds)"] + (["finetune val acc"] if finetune else [])
    cols += ["ms b1", "ms b32", "license", "allowed", "seconds"]
    for col in cols:
        table.add_column(col, justify="left" if col in ("backbone", "license", "allowed") else "right", overflow="fold")
    for c in result.candidates:
        def num(v: Any, fmt: str = ".3f") -> str:
            return format(v, fmt) if isinstance(v, (int, float)) else "-"

        folds = len(c.probe_cv_folds) if c.probe_cv_folds is not None else "-"
        cells = [c.backbone, num(c.logme, ".4f"), num(c.probe_cv_accuracy), f"{num(c.probe_cv_std)} ({folds})"]
        if finetune:
            cells.append(num(c.finetune_val_accuracy))
        cells += [_ms(c.latency_ms_b1), _ms(c.latency_ms_b32), c.license,
                  "yes" if c.allowed else f"no: {c.reason}", num(c.seconds, ".1f")]
        table.add_row(*cells, style="bold green" if c.backbone == result.winner else None)
    return table


@app.command()
def bakeoff(
    study: Annotated[Path, typer.Argument(help="The study YAML file; its 'backbones' are the candidates.", show_default=False)],
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a config key, e.g. --set bakeoff.subset=200.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the result as JSON here.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show progress.")] = True,
) -> None:
    """Compare the study's candidate backbones on a subset of its training data and name the winner."""
    from ..core.artifacts import save_json
    from ..core.config import load_config
    from ..core.results import Bakeoff
    from ..selection import check_license, run_bakeoff
    from ..study import Study
    from .study import _overrides, _prepare

    cfg = load_config(study, _overrides(set_))
    check_license(cfg, cfg.backbones, require_all=False)  # before loading data or any model
    console = stdout()
    prepared = _prepare(Study(cfg, progress=progress), console)
    console.print(Text(f"Data: {len(prepared.train)} train / {len(prepared.val)} val rows, "
                       f"fingerprint {prepared.fingerprint[:12]}"))
    found = run_bakeoff(cfg, prepared.train, prepared.val, progress=progress)
    result = Bakeoff.model_validate(found)
    console.print(render_bakeoff(result))
    console.print(Text(f"Winner: {result.winner} — rule: {result.rule}.", style="bold"))
    console.print(Text(result.reading or ""))
    console.print(Text(f"Bake-off took {result.seconds:.1f} s."))
    if output is not None:
        save_json(found, output)
        console.print(Text(f"Wrote {output}"))

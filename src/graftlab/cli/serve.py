"""``graft serve``: a packaged or registered model behind HTTP (FastAPI + uvicorn, one worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import typer
from rich.text import Text

from ..core.errors import ConfigError
from .app import app, stdout
from .registry import registry_store

__all__ = ["LOG_LEVELS", "check_port", "serve"]

_LIMITS = "Limits"
_ROLLOUT = "Rollout"
LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]  # uvicorn's
LOG_LEVELS = get_args(LogLevel)


@app.command()
def serve(
    model: Annotated[str, typer.Argument(help="A packaged model folder, or NAME, NAME@alias or NAME:version in the registry.",
                                         show_default=False)],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8000,
    shadow: Annotated[str | None, typer.Option(help="A challenger that scores every request too (logged, never returned).",
                                               rich_help_panel=_ROLLOUT)] = None,
    canary: Annotated[str | None, typer.Option(help="A challenger that answers --canary-percent of requests.",
                                               rich_help_panel=_ROLLOUT)] = None,
    canary_percent: Annotated[float, typer.Option(help="Share of requests (0-100) routed to the canary.",
                                                  rich_help_panel=_ROLLOUT)] = 10.0,
    rollout_window: Annotated[int, typer.Option(help="Challenger requests judged by the rollback guard.",
                                                rich_help_panel=_ROLLOUT)] = 200,
    rollout_min_requests: Annotated[int, typer.Option(help="Requests needed before the guard may roll back.",
                                                      rich_help_panel=_ROLLOUT)] = 20,
    max_error_rate: Annotated[float, typer.Option(help="Roll back above this challenger error rate.",
                                                  rich_help_panel=_ROLLOUT)] = 0.05,
    max_latency_p95_ms: Annotated[float, typer.Option(help="Roll back above this challenger latency p95 (ms).",
                                                      rich_help_panel=_ROLLOUT)] = 2000.0,
    max_disagreement: Annotated[float, typer.Option(help="Roll back above this disagreement rate with the champion.",
                                                    rich_help_panel=_ROLLOUT)] = 0.25,
    quantize: Annotated[bool, typer.Option("--quantize", help="Serve int8 (dynamic quantization) when it agrees with fp32 "
                                                              "on the reference texts.")] = False,
    quantize_min_agreement: Annotated[float, typer.Option(help="Least share of reference texts on which int8 must "
                                                                 "predict the fp32 label (else fp32 is served).")] = 0.99,
    log_db: Annotated[Path, typer.Option(help="The SQLite prediction log.")] = Path(".graft/predictions.db"),
    log_inputs: Annotated[bool, typer.Option("--log-inputs", help="Store inputs in the log: texts with e-mails, phone "
                                                                  "numbers and long numbers redacted; images as sent "
                                                                  "(needed by drift tests on inputs and by retraining).")] = False,
    max_chars: Annotated[int, typer.Option(help="Longest input text (characters).", rich_help_panel=_LIMITS)] = 5000,
    max_batch: Annotated[int, typer.Option(help="Most inputs in one request.", rich_help_panel=_LIMITS)] = 64,
    max_request_bytes: Annotated[int | None, typer.Option(help="Largest request body in bytes (default: 1,000,000 for "
                                                               "a text model, 30,000,000 for an image model).",
                                                          rich_help_panel=_LIMITS, show_default=False)] = None,
    max_image_pixels: Annotated[int, typer.Option(help="Largest image (width x height) an image model accepts.",
                                                  rich_help_panel=_LIMITS)] = 20_000_000,
    batch_window_ms: Annotated[float, typer.Option(help="Micro-batching window (ms).", rich_help_panel=_LIMITS)] = 5.0,
    batch_max_items: Annotated[int, typer.Option(help="Most inputs in one model call.", rich_help_panel=_LIMITS)] = 32,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI for registry references.")] = None,
    access_log: Annotated[bool, typer.Option("--access-log/--no-access-log", help="Log every HTTP request.")] = False,
    log_level: Annotated[LogLevel, typer.Option(help="uvicorn log level.", case_sensitive=False)] = "info",
) -> None:
    """Serve a model: POST /v1/predict, /v1/feedback, /v1/explain; GET /health, /ready, /metrics; docs at /docs.

    /health names the models and nothing else; admin endpoints (/admin/status with paths and the rollout state,
    /admin/promote, /admin/rollback, /admin/reload) need the bearer token in GRAFT_ADMIN_TOKEN.
    """
    import logging

    import uvicorn

    from ..serving import ServeConfig, Service, create_app

    if shadow and canary:
        raise ConfigError("--canary and --shadow cannot be used together; choose one.")
    cfg = ServeConfig.from_dict({
        "model": model, "shadow": shadow, "canary": canary, "canary_percent": canary_percent, "quantize": quantize,
        "quantize_min_agreement": quantize_min_agreement, "log_db": str(log_db), "log_inputs": log_inputs,
        "tracking_uri": tracking_uri,
        "limits": {"max_chars": max_chars, "max_batch": max_batch, "max_request_bytes": max_request_bytes,
                   "max_image_pixels": max_image_pixels},
        "batching": {"window_ms": batch_window_ms, "max_items": batch_max_items},
        "rollout": {"window": rollout_window, "min_requests": rollout_min_requests, "max_error_rate": max_error_rate,
                    "max_latency_p95_ms": max_latency_p95_ms, "max_disagreement": max_disagreement},
    }, source="graft serve options")
    check_port(host, port)  # before the models load; the URL is announced only once the port is known to be free
    logging.addLevelName(5, "TRACE")  # uvicorn's level below DEBUG, registered only once uvicorn configures logging
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    service = Service(cfg)
    with registry_store(tracking_uri, model, shadow, canary):  # an unusable --tracking-uri: a user error, said now
        service.load()  # a bad reference or a tampered package fails here, as a user error, before the port opens
    console = stdout()
    console.print(Text(f"Serving {service.champion.version} ({service.champion.modality} model) on http://{host}:{port} (docs: /docs, log: {cfg.log_db})"))
    if service.challenger is not None:
        console.print(Text(f"{cfg.mode} challenger: {service.challenger.version}"))
    for m in (service.champion, service.challenger):
        if m is not None and m.quantization is not None:
            console.print(Text(f"quantization of {m.version}: {m.quantization.reason}"))
    uvicorn.run(create_app(cfg, service), host=host, port=port, workers=1, access_log=access_log, log_level=log_level)


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once (as uvicorn will, with SO_REUSEADDR) and let it go.

    Raises:
        ConfigError: the port is in use, or the address is not one this machine can listen on.
    """
    import socket

    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        raise ConfigError(f"--host {host} is not an address this machine knows ({e.strerror}); pass e.g. --host "
                          "127.0.0.1 (this machine only) or --host 0.0.0.0 (every interface).") from None
    for family, kind, proto, _, address in found:  # uvicorn listens on each address the host resolves to
        _try_bind(family, kind, proto, address, host, port)


def _try_bind(family: int, kind: int, proto: int, address: Any, host: str, port: int) -> None:
    import errno
    import socket

    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a port left in TIME_WAIT is free for uvicorn too
        try:
            sock.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} is in use (on {host}); pass --port with a free port, or stop what "
                                  "listens there.") from None
            raise ConfigError(f"Cannot listen on {host}:{port} ({e.strerror}); pass another --host or "
                              "--port.") from None


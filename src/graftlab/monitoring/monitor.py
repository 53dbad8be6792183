"""``graft monitor``: compare recent traffic in the prediction log with the model's reference profile.

Drift (embeddings, confidence, predicted classes, input length and empty inputs for text models, brightness
for image models) and live performance
from feedback labels become alerts; the outcome is a JSON + HTML report, an exit code (1 when an alert
fired) and, optionally, a webhook POST.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import ArtifactError, ConfigError
from ..data.images import brightness
from .alerts import Alert, MonitorPolicy, check_webhook_url, live_performance, performance_alerts, send_webhook
from .drift import (
    DriftTest,
    class_chi2,
    confidence_ks,
    domain_classifier_test,
    drift_alarm,
    brightness_test,
    empty_rate_test,
    input_length_test,
    mmd_test,
    unavailable,
)
from .report import plots, timeline, write_report
from .window import Window, parse_window, select_window

__all__ = ["EmbedFn", "MonitorResult", "latest_report", "monitor_dir", "read_log", "run_monitor"]

EmbedFn = Callable[[Sequence[Any]], np.ndarray]  # texts, or image arrays for an image model
REFERENCE_DECIMALS = 5  # graft study rounds reference embeddings to 5 decimals; live ones get the same treatment
_NO_TEXT_NOTE = ("Input texts are not logged, so the embedding, length and empty-input checks could not run: serve "
                 "with `graft serve --log-inputs`.")
_NO_IMAGE_NOTE = ("Input images are not logged, so the embedding and brightness checks could not run: serve with "
                  "`graft serve --log-inputs`.")
_NEEDS_INPUTS = "inputs are not in the log: serve with `graft serve --log-inputs` to enable this check"


@dataclass
class MonitorResult:
    """The report (as written to ``monitor.json``), where it was written, and the alerts."""

    report: dict[str, Any]
    paths: dict[str, Path]
    alerts: list[Alert] = field(default_factory=list)

    @property
    def alerted(self) -> bool:
        return bool(self.alerts)

    @property
    def exit_code(self) -> int:
        return 1 if self.alerts else 0


def _safe(name: str) -> str:
    return re.sub(r"[^\w.\-]+", "_", name).strip("_") or "model"


def monitor_dir(name: str, root: str | Path = ".graft/monitor") -> Path:
    """Where reports of model ``name`` go by default: ``.graft/monitor/<name>/``."""
    return Path(root) / _safe(name)


def latest_report(name: str, root: str | Path = ".graft/monitor") -> Path | None:
    """The newest ``monitor.json`` written for ``name`` under the default folder, if any."""
    found = sorted(monitor_dir(name, root).glob("*/monitor.json"))
    return found[-1] if found else None


# -- inputs -----------------------------------------------------------------------------------------
def _load(model: Any, tracking_uri: str | None) -> tuple[Any, dict[str, Any]]:
    """(PackagedModel, identity) for a loaded model, a folder or a registry reference."""
    from ..packaging import PackagedModel, load_model
    from ..serving.resolve import manifest_digest, resolve_ref

    if isinstance(model, PackagedModel):
        return model, {"ref": str(model.folder), "name": model.name, "registry": None,
                       "versions": {f"{model.name}#{manifest_digest(model.folder)}"}}
    ref = resolve_ref(str(model), tracking_uri)
    loaded = load_model(ref.path)
    versions = {f"{loaded.name}#{manifest_digest(loaded.folder)}"}
    if ref.from_registry and ref.version:
        versions.add(f"{ref.registry_name}:{ref.version}")
    registry = {"name": ref.registry_name, "alias": ref.alias, "version": ref.version} if ref.from_registry else None
    return loaded, {"ref": str(model), "name": ref.registry_name or loaded.name, "registry": registry,
                    "versions": versions}


def read_log(log_db: Path, since: float | None = None) -> Any:
    """The served rows of the prediction log ``log_db`` with their feedback (see ``serving.predlog.read_predictions``).

    Raises:
        ConfigError: there is no file at ``log_db``, or it is not a prediction log written by ``graft serve``.
    """
    from ..serving.predlog import read_predictions

    if not log_db.is_file():
        raise ConfigError(f"There is no prediction log at {log_db}. Serve the model with `graft serve NAME --log-db "
                          f"{log_db}` (add --log-inputs for the embedding and length checks), or pass --log-db.")
    return read_predictions(log_db, since=since)  # raises ConfigError for a file that is not a prediction log


def _check_out_dir(out_dir: str | Path | None) -> None:
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ConfigError(f"The report folder {out_dir} is a file. A report is a folder (monitor.json, monitor.html): "
                          "pass --out a new or existing folder, or omit --out for .graft/monitor/NAME/<time>.")


def _rows(log_db: Path, versions: set[str], window: Window, now: float | None) -> tuple[Any, list[str]]:
    """The served rows of this model inside the window (all served rows when the log names another version)."""
    frame = read_log(log_db)
    notes = []
    mine = frame[frame["model_version"].isin(versions)]
    if len(mine) == 0 and len(frame):
        logged = sorted(frame["model_version"].unique())[:5]
        notes.append(f"No logged row names this model's version ({', '.join(sorted(versions))}); the log holds "
                     f"{', '.join(logged)}. Using every served row.")
        mine = frame
    return select_window(mine, window, now), notes


def _probabilities(rows: Any, label_names: list[str]) -> np.ndarray:
    out = np.zeros((len(rows), len(label_names)))
    for i, text in enumerate(rows["probabilities"]):
        p = json.loads(text)
        out[i] = [float(p.get(n, 0.0)) for n in label_names]
    return out


def _embedder(reference: dict[str, Any], meta: dict[str, Any]) -> tuple[EmbedFn | None, str]:
    from ..backbones import get_backbone
    from ..core.errors import GraftError

    for candidate in (reference.get("embedding_backbone"), (meta.get("backbone") or {}).get("path")):
        if not candidate:
            continue
        try:  # a registered name (image backbones with their size: efficientnet-lite0@112) or a model folder
            bb, max_length = get_backbone(str(candidate)), meta.get("max_length")
        except GraftError:
            continue

        def embed(inputs: Sequence[Any], bb: Any = bb, max_length: Any = max_length) -> np.ndarray:
            return bb.embed(list(inputs), max_length=max_length)

        return embed, ""
    return None, (f"the reference embeddings came from backbone {reference.get('embedding_backbone')!r}, which is "
                  "neither registered nor a folder on this machine")


# -- checks -----------------------------------------------------------------------------------------
def _embedding_tests(inputs: list[Any], reference: dict[str, Any], meta: dict[str, Any], policy: MonitorPolicy,
                     embed_fn: EmbedFn | None) -> list[DriftTest]:
    tests = []
    ref_emb = reference.get("embeddings")
    if not ref_emb:
        why = "the model's reference profile has no embeddings (its winning strategy used no backbone)"
        tests += [unavailable("mmd", why), unavailable("domain_classifier", why)]
    else:
        fn, why = (embed_fn, "") if embed_fn is not None else _embedder(reference, meta)
        if fn is None:
            tests += [unavailable("mmd", why), unavailable("domain_classifier", why)]
        else:
            rng = np.random.default_rng(policy.seed)
            pick = np.sort(rng.choice(len(inputs), min(len(inputs), policy.max_embed), replace=False))
            # rounded like the reference: otherwise near-constant dimensions (exact zeros in the reference, tiny
            # values live) let the domain classifier tell the two apart without any drift
            live = np.round(np.asarray(fn([inputs[i] for i in pick]), dtype=np.float64), REFERENCE_DECIMALS)
            ref = np.asarray(ref_emb, dtype=np.float64)
            tests.append(mmd_test(ref, live, policy.permutations, policy.seed))
            tests.append(domain_classifier_test(ref, live, policy.folds, policy.seed))
    return tests


def _text_tests(texts: list[str], reference: dict[str, Any], meta: dict[str, Any], policy: MonitorPolicy,
                embed_fn: EmbedFn | None) -> list[DriftTest]:
    names = ("mmd", "domain_classifier", "input_length", "empty_rate")
    if not texts:
        return [unavailable(n, _NEEDS_INPUTS) for n in names]
    words = np.array([len(t.split()) for t in texts])
    empty = int(sum(not t.strip() for t in texts))
    n_ref = int(reference.get("n") or len(reference.get("confidences") or []))
    tests = _embedding_tests(texts, reference, meta, policy, embed_fn)
    if reference.get("input_words"):
        tests.append(input_length_test(reference["input_words"], n_ref, words))
    else:
        tests.append(unavailable("input_length", "the reference profile has no input-length statistics"))
    tests.append(empty_rate_test(float(reference.get("empty_rate", 0.0)), n_ref, empty, len(texts)))
    return tests


def _logged_images(rows: Any) -> tuple[list[np.ndarray | None], int]:
    """Per row, its logged image decoded (None where none was logged or it is unreadable); and how many were
    logged but unreadable."""
    from ..serving.inputs import logged_image

    values = rows["input_text"].tolist() if len(rows) else []
    images = [logged_image(v) for v in values]
    logged = sum(isinstance(v, str) for v in values)
    return images, logged - sum(x is not None for x in images)


def _image_tests(images: list[np.ndarray], broken: int, reference: dict[str, Any], meta: dict[str, Any],
                 policy: MonitorPolicy, embed_fn: EmbedFn | None) -> tuple[list[DriftTest], list[str]]:
    """Embedding and brightness drift of an image model's logged images; (tests, notes)."""
    names = ("mmd", "domain_classifier", "brightness")
    notes = [f"{broken} logged inputs are not readable images and were left out of the input checks."] if broken else []
    if not images:
        return [unavailable(n, _NEEDS_INPUTS) for n in names], notes
    n_ref = int(reference.get("n") or len(reference.get("confidences") or []))
    tests = _embedding_tests(images, reference, meta, policy, embed_fn)
    if reference.get("input_brightness"):
        tests.append(brightness_test(reference["input_brightness"], n_ref, brightness(images)))
    else:
        tests.append(unavailable("brightness", "the reference profile has no brightness statistics (packaged before "
                                               "graftlab recorded them: run the study again to add them)"))
    return tests, notes


def _drift(rows: Any, proba: np.ndarray, reference: dict[str, Any], meta: dict[str, Any], policy: MonitorPolicy,
           embed_fn: EmbedFn | None, names: list[str], images: tuple[list[np.ndarray | None], int] | None = None,
           ) -> tuple[list[DriftTest], list[str]]:
    """``images``: an image model's logged images per row and the unreadable count (None: a text model)."""
    n = len(rows)
    input_names = ("mmd", "domain_classifier", "brightness") if images is not None else \
        ("mmd", "domain_classifier", "input_length", "empty_rate")
    if n < policy.min_requests:
        why = f"{n} requests in the window; at least min_requests={policy.min_requests} are needed"
        return [unavailable(t, why) for t in (*input_names, "confidence_ks", "class_chi2")], []
    tests = [confidence_ks(reference["confidences"], proba.max(1)),
             class_chi2(reference["predicted_distribution"], np.bincount(proba.argmax(1), minlength=len(names)), names)]
    if images is not None:
        found, notes = _image_tests([x for x in images[0] if x is not None], images[1], reference, meta, policy,
                                    embed_fn)
        return found + tests, notes
    logged = [str(t) for t in rows["input_text"] if t is not None and not (isinstance(t, float) and np.isnan(t))]
    return _text_tests(logged, reference, meta, policy, embed_fn) + tests, []


def _reference_summary(reference: dict[str, Any]) -> dict[str, Any]:
    counts = np.asarray(reference.get("predicted_distribution") or [], dtype=float)
    return {"n": reference.get("n"), "val_metrics": reference.get("val_metrics") or {},
            "confidence_mean": float(np.mean(reference["confidences"])) if reference.get("confidences") else None,
            "predicted_share": (counts / counts.sum()).tolist() if counts.size and counts.sum() else None,
            "words_mean": (reference.get("input_words") or {}).get("mean"),
            "brightness_mean": (reference.get("input_brightness") or {}).get("mean"),
            "has_embeddings": bool(reference.get("embeddings"))}


# -- the run ----------------------------------------------------------------------------------------
def run_monitor(
    model: Any,
    log_db: str | Path = ".graft/predictions.db",
    window: str | int | Window = "1d",
    policy: MonitorPolicy | None = None,
    out_dir: str | Path | None = None,
    webhook: str | None = None,
    tracking_uri: str | None = None,
    embed_fn: EmbedFn | None = None,
    now: float | None = None,
    html: bool = True,
) -> MonitorResult:
    """Check the logged traffic of ``model`` and write the report.

    Args:
        model: a registry reference (NAME, NAME@alias, NAME:version), a packaged model folder, or a loaded
            :class:`~graftlab.packaging.PackagedModel`.
        log_db: the SQLite prediction log written by ``graft serve``.
        window: which requests: a duration (``1d``, ``12h``), a count (``500``) or ``all``.
        policy: thresholds and sample sizes (default :class:`MonitorPolicy`).
        out_dir: report folder (default ``.graft/monitor/<name>/<UTC timestamp>``).
        webhook: a URL that receives a JSON summary by POST when an alert fired.
        embed_fn: inputs (texts, or uint8 image arrays) -> (n, d) embeddings (default: the reference's backbone,
            pretrained weights).
        now: the current time (unix seconds) for duration windows.
        html: also write ``monitor.html`` with its plots (False: the JSON only, much faster).

    Returns:
        A :class:`MonitorResult`; ``exit_code`` is 1 when an alert fired.

    Raises:
        ConfigError: bad window, policy, webhook or report folder, or no prediction log. ArtifactError: no reference
            profile.
    """
    policy = policy or MonitorPolicy()
    win = window if isinstance(window, Window) else parse_window(window)
    _check_out_dir(out_dir)
    if webhook:
        check_webhook_url(webhook)
    packaged, ident = _load(model, tracking_uri)
    reference = packaged.reference()
    if not reference or "confidences" not in reference:
        raise ArtifactError(f"The model at {packaged.folder} has no reference profile (reference.json) to compare "
                            "traffic with. Monitor a model packaged by `graft study`, which writes one.")
    names = list(packaged.label_names)
    rows, notes = _rows(Path(log_db), ident["versions"], win, now)
    proba = _probabilities(rows, names)
    modality = packaged.modality
    images = _logged_images(rows) if modality == "image" else None  # decoded once: drift tests and timeline
    tests, input_notes = _drift(rows, proba, reference, packaged.meta, policy, embed_fn, names, images)
    notes += input_notes
    order = {n: i for i, n in enumerate(("mmd", "domain_classifier", "confidence_ks", "class_chi2", "input_length",
                                         "empty_rate", "brightness"))}
    tests.sort(key=lambda t: order.get(t.name, 99))
    alarm = drift_alarm(tests, policy.alpha)
    alerts: list[Alert] = []
    if alarm["alarm"]:
        alerts.append(Alert("drift", f"drift in {', '.join(alarm['rejected'])} (Holm-adjusted p < {policy.alpha}) over "
                                     f"{len(rows)} requests", {"rejected": alarm["rejected"]}))

    labeled = rows[rows["true_label"].notna()]
    perf = live_performance(labeled["true_label"].astype(str).tolist(), _probabilities(labeled, names), names, policy)
    perf_alerts, comparison = performance_alerts(perf, reference.get("val_metrics") or {}, policy)
    alerts += perf_alerts
    perf["comparison"] = comparison

    has_text = rows["input_text"].notna().to_numpy() if len(rows) else np.zeros(0, bool)
    index = {n: i for i, n in enumerate(names)}
    correct = np.array([float(index[t] == p.argmax()) if isinstance(t, str) and t in index else np.nan
                        for t, p in zip(rows["true_label"], proba, strict=True)])
    words = (np.array([len(str(t).split()) for t in rows["input_text"]], dtype=float)
             if modality == "text" and has_text.all() and len(rows) else None)
    shade = (brightness(images[0]) if images is not None and len(rows) and all(x is not None for x in images[0])
             else None)
    predicted = [names[i] for i in proba.argmax(1)] if len(rows) else []
    ts = rows["ts"].to_numpy(dtype=float)
    report: dict[str, Any] = {
        "format": "graftlab-monitor/1",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {"ref": ident["ref"], "name": ident["name"], "registry": ident["registry"], "modality": modality,
                  "version": (ident["registry"] or {}).get("version"), "log_versions": sorted(ident["versions"]),
                  "folder": str(packaged.folder), "label_names": names},
        "log_db": str(log_db),
        "window": {"spec": win.spec, "kind": win.kind, "description": win.describe(), "n_requests": len(rows),
                   "n_with_text": int(has_text.sum()), "first_ts": float(ts.min()) if len(ts) else None,
                   "last_ts": float(ts.max()) if len(ts) else None},
        "policy": policy.model_dump(),
        "reference": _reference_summary(reference),
        "drift": {**alarm, "tests": [t.to_dict() for t in tests]},
        "performance": perf,
        "timeline": timeline(ts, proba.max(1) if len(rows) else np.zeros(0), predicted, names, correct, words, shade),
        "alerts": [a.to_dict() for a in alerts],
        "alerted": bool(alerts),
        "exit_code": 1 if alerts else 0,
        "notes": notes + ([] if has_text.any() or not len(rows) else
                          [_NO_IMAGE_NOTE if modality == "image" else _NO_TEXT_NOTE]),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")[:-3]
    out = Path(out_dir) if out_dir is not None else monitor_dir(ident["name"]) / stamp
    report["webhook"] = None
    if webhook and alerts:
        report["webhook"] = {"url_host": _host(webhook), **send_webhook(webhook, _payload(report, out))}
    figures = plots(report, list(reference.get("confidences") or []), proba.max(1).tolist() if len(rows) else []) \
        if html else None
    try:
        paths = write_report(report, figures, out)
    except OSError as e:
        raise ConfigError(f"Cannot write the report into {out} ({e.strerror or e}). Pass --out a folder you can "
                          "write to.") from None
    return MonitorResult(report, paths, alerts)


def _host(url: str) -> str:
    from urllib.parse import urlparse

    return urlparse(url).netloc


def _payload(report: dict[str, Any], out: Path) -> dict[str, Any]:
    return {"source": "graftlab", "event": "monitor_alert", "model": report["model"]["name"],
            "version": report["model"]["version"], "created": report["created"], "window": report["window"],
            "alerts": report["alerts"], "drift_alarm": report["drift"]["alarm"], "report": str(out.resolve())}

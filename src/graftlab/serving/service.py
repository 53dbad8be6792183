"""The serving core, independent of HTTP: loaded models, routing, logging, rollout and admin actions."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import ConfigError, GraftError
from .batching import BatchResult, MicroBatcher
from .config import ServeConfig
from .inputs import ImageInput
from .metrics import ServingMetrics
from .predlog import PredictionLog, PredictionRow
from .quantize import QuantizationReport, quantize_model
from .resolve import ModelRef, manifest_digest, registry_module, resolve_ref
from .rollout import Observation, RolloutEvent, RolloutGuard, in_canary

__all__ = ["InputMismatch", "ModelFailure", "ServedModel", "Service", "ServiceConflict", "load_served_model"]

log = logging.getLogger("graftlab.serving")


class ServiceConflict(GraftError):
    """An admin action that the current state does not allow (HTTP 409)."""


class InputMismatch(GraftError):
    """A request whose inputs are not what the served model takes (HTTP 422)."""


class ModelFailure(RuntimeError):
    """The champion raised while scoring a request (HTTP 500; the server keeps answering)."""


@dataclass
class ServedModel:
    """A loaded model with where it came from, its version label and its micro-batcher."""

    ref: ModelRef
    base: Any  # the PackagedModel (fp32)
    model: Any  # what is served: ``base`` or its int8 view
    version: str
    quantization: QuantizationReport | None = None
    batcher: MicroBatcher | None = None

    @property
    def label_names(self) -> list[str]:
        return list(self.base.label_names)

    @property
    def modality(self) -> str:
        """``"text"`` or ``"image"``: what requests must send."""
        return self.base.modality

    def info(self) -> dict[str, Any]:
        return {"ref": self.ref.ref, "path": str(self.ref.path), "name": self.base.name, "version": self.version,
                "registry": {"name": self.ref.registry_name, "alias": self.ref.alias, "version": self.ref.version}
                if self.ref.from_registry else None,
                "modality": self.modality, "labels": self.label_names, "quantization": self.quantization.to_dict() if self.quantization else None}


def load_served_model(ref: str, cfg: ServeConfig) -> ServedModel:
    """Resolve ``ref``, load and verify the package, and quantize it when the config asks (blocking)."""
    from ..packaging import load_model

    resolved = resolve_ref(ref, cfg.tracking_uri)
    base = load_model(resolved.path)
    if resolved.from_registry and resolved.version:
        version = f"{resolved.registry_name}:{resolved.version}"
    else:
        version = f"{base.name}#{manifest_digest(base.folder)}"
    served, report = base, None
    if cfg.quantize:
        served, report = quantize_model(base, cfg.quantize_min_agreement)
    return ServedModel(resolved, base, served, version, report)


class Service:
    """Everything the endpoints call. Blocking work runs on worker threads; state changes on the event loop."""

    def __init__(self, cfg: ServeConfig) -> None:
        self.cfg = cfg
        self.metrics = ServingMetrics()
        self.guard = RolloutGuard(cfg.rollout)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graft-model")  # one model call at a time
        self.champion: ServedModel | None = None
        self.challenger: ServedModel | None = None
        self.previous: ServedModel | None = None  # the champion before the last promotion
        self.mode = cfg.mode
        self.challenger_active = False
        self.events: list[RolloutEvent] = []
        self.log: PredictionLog | None = None
        self.ready = False
        self._background: set[asyncio.Task] = set()

    # ---- lifecycle ----------------------------------------------------------------------------------
    def load(self) -> None:
        """Load the models and open the prediction log (blocking; a bad reference raises a GraftError)."""
        if self.champion is not None:
            return
        champion = load_served_model(self.cfg.model, self.cfg)
        challenger = load_served_model(self.cfg.challenger, self.cfg) if self.cfg.challenger else None
        if challenger is not None:
            _check_same_labels(champion, challenger)
        self.champion, self.challenger = champion, challenger
        self.challenger_active = challenger is not None
        self.log = PredictionLog(self.cfg.log_db, self.cfg.log_inputs)  # a bad --log-db: a ConfigError
        self._update_model_metrics()
        log.info("serving %s%s", champion.version,
                 f" with {self.mode} challenger {challenger.version}" if challenger else "")

    async def start(self) -> None:
        if self.champion is None:
            await asyncio.get_running_loop().run_in_executor(None, self.load)
        for m in (self.champion, self.challenger):
            if m is not None:
                await self._start_batcher(m)
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self._background:
            await asyncio.wait(list(self._background), timeout=10)
        for m in (self.champion, self.challenger, self.previous):
            if m is not None and m.batcher is not None:
                await m.batcher.stop()
        if self.log is not None:
            self.log.close()
        self.executor.shutdown(wait=True)

    async def _start_batcher(self, m: ServedModel) -> None:
        if m.batcher is None:
            b = self.cfg.batching
            m.batcher = MicroBatcher(lambda inputs, model=m.model: model.predict_proba(_model_inputs(inputs),
                                                                                       b.model_batch_size),
                                     self.executor, b.window_ms / 1000.0, b.max_items)
            await m.batcher.start()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # ---- predictions --------------------------------------------------------------------------------
    async def _score(self, m: ServedModel, texts: list[str], route: str) -> tuple[BatchResult, float]:
        start = time.perf_counter()
        try:
            result = await m.batcher.submit(texts)
        except Exception:
            self.metrics.model_errors.labels(m.version, route).inc()
            raise
        self.metrics.batch_size.observe(result.batch_size)
        return result, time.perf_counter() - start

    def _rows(self, m: ServedModel, ids: list[str], texts: list[str], proba: np.ndarray, route: str,
              latency_ms: float) -> list[PredictionRow]:
        names = m.label_names
        now = time.time()
        return [PredictionRow(rid, route, m.version, text, names[int(p.argmax())],
                              {n: float(v) for n, v in zip(names, p)}, latency_ms, now)
                for rid, text, p in zip(ids, texts, proba)]

    def request_bytes(self) -> int:
        """The request body limit: the configured one, else the default for what the champion takes."""
        return self.cfg.limits.request_bytes(self.champion.modality if self.champion is not None else "text")

    def check_inputs(self, inputs: list[Any]) -> None:
        """Raise InputMismatch when the request sends texts to an image model or images to a text model."""
        images = sum(isinstance(x, ImageInput) for x in inputs)
        modality = self.champion.modality
        if modality == "image" and images < len(inputs):
            raise InputMismatch(f"{self.champion.version} is an image model: send 'image' (or 'images'), the base64 "
                                "text of an image file such as PNG or JPEG, instead of 'text'.")
        if modality == "text" and images:
            raise InputMismatch(f"{self.champion.version} is a text model: send 'text' (or 'texts') instead of 'image'.")

    async def predict(self, texts: list[str | ImageInput]) -> list[dict[str, Any]]:
        """Score ``texts`` (one request: texts, or decoded images for an image model), log every row durably,
        and return one answer per input."""
        self.check_inputs(texts)
        started = time.perf_counter()
        base = uuid.uuid4().hex
        ids = [base] if len(texts) == 1 else [f"{base}-{i}" for i in range(len(texts))]
        champion, challenger = self.champion, self.challenger if self.challenger_active else None
        served, route, result = champion, "champion", None
        if challenger is not None and self.mode == "canary" and in_canary(base, self.cfg.canary_percent):
            try:
                result, seconds = await self._score(challenger, texts, "canary")
                served, route = challenger, "canary"
                self._observe(challenger, Observation(False, seconds * 1000))
                if in_canary(base + ":check", self.cfg.rollout.canary_check_fraction * 100):
                    self._spawn(self._compare(champion, challenger, texts, result.proba))
            except Exception as e:  # noqa: BLE001 -- the user gets the champion's answer; the guard counts the failure
                log.warning("canary %s failed (%s); answering with the champion", challenger.version, e)
                self._observe(challenger, Observation(True, (time.perf_counter() - started) * 1000))
        if result is None:
            try:
                result, seconds = await self._score(champion, texts, "champion")
            except Exception as e:
                log.exception("the champion %s failed on a request", champion.version)
                raise ModelFailure(f"the model failed on this input ({type(e).__name__})") from e
        latency_ms = (time.perf_counter() - started) * 1000
        rows = self._rows(served, ids, texts, result.proba, route, latency_ms)
        await self.log.write(rows)  # acknowledged only once durable
        self.metrics.observe_predictions(served.version, route, [r.prediction for r in rows],
                                         [max(r.probabilities.values()) for r in rows], seconds)
        if challenger is not None and self.mode == "shadow":
            self._spawn(self._shadow(challenger, ids, texts, result.proba))
        return [{"request_id": r.request_id, "label": r.prediction, "probabilities": r.probabilities,
                 "model_version": r.model_version, "route": route} for r in rows]

    async def _shadow(self, challenger: ServedModel, ids: list[str], texts: list[str], champion_proba: np.ndarray) -> None:
        started = time.perf_counter()
        try:
            result, seconds = await self._score(challenger, texts, "shadow")
        except Exception as e:  # noqa: BLE001 -- a shadow failure is counted, never raised
            log.warning("shadow %s failed: %s", challenger.version, e)
            self._observe(challenger, Observation(True, (time.perf_counter() - started) * 1000))
            return
        disagree = result.proba.argmax(1) != champion_proba.argmax(1)
        for d in disagree[:-1]:
            self.guard.record_disagreement(bool(d))
        self._observe(challenger, Observation(False, seconds * 1000, bool(disagree[-1])))
        rows = self._rows(challenger, ids, texts, result.proba, "shadow", seconds * 1000)
        self.metrics.observe_predictions(challenger.version, "shadow", [r.prediction for r in rows],
                                         [max(r.probabilities.values()) for r in rows], seconds)
        try:
            await self.log.write(rows)
        except Exception:
            log.exception("could not log shadow predictions")

    async def _compare(self, champion: ServedModel, challenger: ServedModel, texts: list[str], canary_proba: np.ndarray) -> None:
        """Re-score a canary request with the champion in the background to measure disagreement."""
        try:
            result, _ = await self._score(champion, texts, "champion-check")
        except Exception as e:  # noqa: BLE001 -- a failed check is skipped
            log.warning("champion check of a canary request failed: %s", e)
            return
        for d in result.proba.argmax(1) != canary_proba.argmax(1):
            self.guard.record_disagreement(bool(d))
        self._check_guard(challenger)

    def _observe(self, challenger: ServedModel, obs: Observation) -> None:
        self.guard.record(obs)
        self._check_guard(challenger)

    def _check_guard(self, challenger: ServedModel) -> None:
        if self.challenger_active and self.challenger is challenger:
            reason = self.guard.verdict()
            if reason:
                self._deactivate("automatic", reason)

    def _deactivate(self, trigger: str, reason: str) -> RolloutEvent:
        self.challenger_active = False
        event = RolloutEvent("rollback", reason, self.challenger.version if self.challenger else None,
                             stats={"trigger": trigger, **self.guard.stats()})
        self.events.append(event)
        self.metrics.rollbacks.labels(trigger).inc()
        self._update_model_metrics()
        log.warning("rolled back to champion-only (%s): %s", trigger, reason)
        return event

    async def feedback(self, request_id: str, label: str) -> bool:
        found = await self.log.add_feedback(request_id, label)
        if found:
            self.metrics.feedback.labels(label).inc()
        return found

    # ---- admin --------------------------------------------------------------------------------------
    async def rollback(self, reason: str | None = None) -> RolloutEvent:
        """Stop sending traffic to the challenger; with none active, return to the champion before the last
        promotion (and its registry alias, when the promoted model came from the registry)."""
        if self.challenger is not None and self.challenger_active:
            return self._deactivate("manual", reason or "rolled back by an administrator")
        if self.previous is not None:
            if self.champion.ref.from_registry:  # the promotion moved the alias: move it back
                registry = registry_module()
                name = self.champion.ref.registry_name
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: registry.rollback(name, reason=reason, tracking_uri=self.cfg.tracking_uri))
            promoted, self.champion, self.previous = self.champion, self.previous, None
            self.challenger, self.challenger_active, self.mode = promoted, False, "none"
            event = RolloutEvent("rollback", reason or "returned to the previous champion", promoted.version,
                                 stats={"trigger": "manual", "champion": self.champion.version})
            self.events.append(event)
            self.metrics.rollbacks.labels("manual").inc()
            self._update_model_metrics()
            return event
        raise ServiceConflict("Nothing to roll back: no challenger is receiving traffic and no promotion happened "
                              "since the server started.")

    async def promote(self, force: bool = False, reason: str | None = None) -> RolloutEvent:
        """Make the challenger the champion; a registry challenger also gets the registry's champion alias."""
        ch = self.challenger
        if ch is None:
            raise ServiceConflict("There is no challenger to promote: start the server with --shadow or --canary.")
        if ch.ref.from_registry:
            if ch.ref.version is None:
                raise ServiceConflict(f"The challenger {ch.ref.ref!r} has no known registry version; serve it as "
                                      f"{ch.ref.registry_name}:VERSION to promote it from here.")
            registry = registry_module()
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, lambda: registry.promote(ch.ref.registry_name, ch.ref.version, force=force,
                                                                      reason=reason, tracking_uri=self.cfg.tracking_uri))
        self.previous, self.champion, self.challenger = self.champion, ch, None
        self.challenger_active, self.mode = False, "none"
        self.guard.reset()
        event = RolloutEvent("promote", reason or "promoted by an administrator", ch.version,
                             stats={"registry": ch.ref.from_registry, "force": force})
        self.events.append(event)
        self._update_model_metrics()
        log.info("promoted %s to champion", ch.version)
        return event

    async def reload(self) -> RolloutEvent:
        """Load the champion and challenger again from their references (e.g. after an alias moved)."""
        loop = asyncio.get_running_loop()
        champion = await loop.run_in_executor(None, load_served_model, self.champion.ref.ref, self.cfg)
        challenger = None
        if self.challenger is not None:
            challenger = await loop.run_in_executor(None, load_served_model, self.challenger.ref.ref, self.cfg)
            _check_same_labels(champion, challenger)
        for m in (champion, challenger):
            if m is not None:
                await self._start_batcher(m)
        old = [self.champion, self.challenger]
        self.champion, self.challenger = champion, challenger
        self.guard.reset()
        for m in old:
            if m is not None and m.batcher is not None:
                await m.batcher.stop()
        event = RolloutEvent("reload", "reloaded by an administrator", challenger.version if challenger else None,
                             stats={"champion": champion.version})
        self.events.append(event)
        self._update_model_metrics()
        return event

    # ---- state --------------------------------------------------------------------------------------
    def _update_model_metrics(self) -> None:
        models = {"champion": (self.champion.version, bool(self.champion.quantization and self.champion.quantization.applied))}
        if self.challenger is not None:
            q = bool(self.challenger.quantization and self.challenger.quantization.applied)
            models["challenger"] = (self.challenger.version, q)
        self.metrics.set_models(models)
        self.metrics.challenger_active.set(1 if self.challenger_active else 0)

    def health(self) -> dict[str, Any]:
        """What anyone may see: up or not, and each model's name and version (no paths: /health is public)."""
        return {
            "status": "ok" if self.ready else "starting",
            "healthy": self.ready,
            "champion": _name_and_version(self.champion),
            "challenger": _name_and_version(self.challenger),
        }

    def status(self) -> dict[str, Any]:
        """The detail for the operator (behind the admin token): paths, rollout state, events, the log."""
        return {
            "status": "ok" if self.ready else "starting",
            "champion": self.champion.info() if self.champion else None,
            "challenger": self.challenger.info() if self.challenger else None,
            "mode": self.mode,
            "canary_percent": self.cfg.canary_percent if self.mode == "canary" else None,
            "challenger_active": self.challenger_active,
            "rollout": {"policy": self.cfg.rollout.model_dump(), "window": self.guard.stats()},
            "events": [e.to_dict() for e in self.events],
            "log_db": str(self.cfg.log_db),
        }


def _name_and_version(served: ServedModel | None) -> dict[str, str] | None:
    return {"name": served.base.name, "version": served.version} if served else None


def _model_inputs(inputs: list[Any]) -> list[Any]:
    """What the model takes: texts as they are, images as their pixels."""
    return [x.pixels if isinstance(x, ImageInput) else x for x in inputs]


def _check_same_labels(champion: ServedModel, challenger: ServedModel) -> None:
    if challenger.modality != champion.modality:
        raise ConfigError(f"The challenger {challenger.ref.ref!r} is a {challenger.modality} model but the champion "
                          f"{champion.ref.ref!r} is a {champion.modality} model: a challenger must take the same inputs.")
    if challenger.label_names != champion.label_names:
        raise ConfigError(
            f"The challenger {challenger.ref.ref!r} has labels {challenger.label_names} but the champion "
            f"{champion.ref.ref!r} has {champion.label_names}: a challenger must predict the same labels."
        )

"""The FastAPI app: predict, feedback, explain, health, readiness, metrics, admin; OpenAPI docs at /docs.

Every failure answers JSON: a bad request gets 4xx with a message naming the limit or the field, a
model that raises gets 500, and the server keeps answering either way.
"""

# no ``from __future__ import annotations``: FastAPI reads the endpoints' annotations, and the request
# models are local to create_app (built from the config's limits).

import asyncio
import difflib
import hmac
import importlib
import importlib.util
import logging
import os
import time
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from ..core.errors import GraftError
from ..core.prediction import prediction
from .config import ServeConfig, ServeLimits
from .inputs import ImagePayload, decode_images
from .metrics import CONTENT_TYPE
from .schemas import (
    AdminResponse,
    BatchPrediction,
    ErrorResponse,
    Explanation,
    FeedbackResponse,
    Health,
    Prediction,
    Status,
    request_models,
)
from .service import ModelFailure, Service, ServiceConflict

__all__ = ["create_app"]

log = logging.getLogger("graftlab.serving")

_ENDPOINTS = {"/v1/predict", "/v1/feedback", "/v1/explain", "/health", "/ready", "/metrics", "/admin/promote",
              "/admin/rollback", "/admin/reload", "/admin/status", "/docs", "/redoc", "/openapi.json"}


class _GuardMiddleware:
    """Pure ASGI: refuses bodies over ``max_request_bytes`` (413) or not UTF-8 (400); records request metrics."""

    def __init__(self, app: Any, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        endpoint = scope["path"] if scope["path"] in _ENDPOINTS else "other"  # bounded label set
        status = {"code": 500}
        started = time.perf_counter()

        async def send_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            receive = await self._limited_body(scope, receive, send_status)
            if receive is not None:
                await self.app(scope, receive, send_status)
        finally:
            m, code = self.service.metrics, str(status["code"])
            m.requests.labels(endpoint, scope.get("method", ""), code).inc()
            if status["code"] >= 400:
                m.errors.labels(endpoint, code).inc()
            m.latency.labels(endpoint).observe(time.perf_counter() - started)

    async def _limited_body(self, scope: dict, receive: Any, send: Any) -> Any:
        """Read the body up to the limit and replay it; None when a 413/400 was already sent."""
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return receive
        limit = self.service.request_bytes()
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                await _send_json(send, 400, {"detail": "The Content-Length header is not a number."})
                return None
            if size > limit:
                # a client waiting for "100 Continue" sends nothing unless asked (receive() would ask): no drain
                if size <= _drain_budget(limit) and headers.get(b"expect", b"").lower() != b"100-continue":
                    await _discard_body(receive, _drain_budget(limit))
                await _send_json(send, 413, {"detail": _too_large(f"has {size} bytes", limit)})
                return None
        chunks, total = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            total += len(chunks[-1])
            more = message.get("more_body", False)
            if total > limit:
                if more:
                    await _discard_body(receive, _drain_budget(limit) - total)
                await _send_json(send, 413, {"detail": _too_large(f"has more than {limit} bytes", limit)})
                return None
            if not more:
                break
        body, delivered = b"".join(chunks), False
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            await _send_json(send, 400, {"detail": f"The request body is not valid UTF-8 (byte {e.start}); send "
                                                   "UTF-8 encoded JSON."})
            return None

        async def replay() -> dict:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


def _drain_budget(limit: int) -> int:
    """An oversized body up to this size is read and thrown away before the 413 is sent, so that a client that
    writes its whole request before reading (Python's urllib) gets the answer instead of a reset connection;
    past it, the server answers at once and the connection closes."""
    return max(4 * limit, 32_000_000)


async def _discard_body(receive: Any, budget: int) -> None:
    """Read the rest of a request body without keeping it, at most ``budget`` bytes."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


def _too_large(what: str, limit: int) -> str:
    return (f"The request body {what}; the limit is max_request_bytes={limit}: send fewer or smaller inputs per "
            "request (or start the server with a larger --max-request-bytes).")


async def _send_json(send: Any, status: int, payload: dict) -> None:
    await JSONResponse(payload, status_code=status)({"type": "http"}, None, send)


def _example(path: str) -> str:
    """A JSON body the endpoint at ``path`` accepts, for error messages."""
    if path == "/v1/feedback":
        return '{"request_id": "...", "label": "..."}'
    if path.startswith("/admin"):
        return '{"reason": "..."} (or no body)'
    return '{"text": "..."} (or {"image": "<base64>"} for an image model)'


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";")[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def _body_problem(request: Request, exc: RequestValidationError) -> tuple[int, str] | None:
    """(status, message) when the body as a whole is unusable: empty, not sent as JSON, or JSON but not an object."""
    if not any(tuple(e.get("loc", ())) == ("body",) for e in exc.errors()):
        return None
    content_type, example = request.headers.get("content-type"), _example(request.url.path)
    if exc.body is None:
        return 422, (f"The request body is empty: send a JSON object such as {example} with the header "
                     "'Content-Type: application/json'.")
    if not _is_json(content_type):
        got = f"'Content-Type: {content_type}'" if content_type else "no Content-Type header"
        return 415, (f"The request body must be JSON, but the request has {got}: send a JSON object such as "
                     f"{example} with the header 'Content-Type: application/json' (with curl: "
                     "-H 'Content-Type: application/json', or --json).")
    if not isinstance(exc.body, dict):
        return 422, (f"The request body is JSON but not an object (it is a {type(exc.body).__name__}): send a JSON "
                     f"object such as {example}.")
    return None


def _unknown_key(key: str, keys: list[str], example: str) -> str:
    """What to say about a body key the endpoint does not take: the close one, every accepted one and an example."""
    close = difflib.get_close_matches(key, keys, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    accepted = ", ".join(map(repr, keys[:-1])) + f" or {keys[-1]!r}" if len(keys) > 1 else repr(keys[0])
    return f"{key!r} is not a key of this request{hint}; send {accepted}, e.g. {example}"


def _validation_message(errors: list[dict], limits: ServeLimits, example: str,
                        keys: list[str]) -> tuple[str, list[dict]]:
    """One readable sentence per error (naming the configured limit where one was hit, or for an unknown key the
    accepted ``keys``), without the input."""
    clean = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        msg, kind = str(e.get("msg", "")), str(e.get("type", ""))
        if kind == "extra_forbidden" and len(loc) == 1 and keys:
            msg = _unknown_key(loc[0], keys, example)
        elif kind == "string_too_long" and loc[:1] in (["text"], ["texts"]):
            msg += f" (limit max_chars={limits.max_chars})"
        elif kind == "too_long" and loc in (["texts"], ["images"]):
            msg += f" (limit max_batch={limits.max_batch})"
        elif kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif kind == "json_invalid":
            at = f" at character {loc[0]}" if loc and loc[0].isdigit() else ""
            msg, loc = f"the body is not valid JSON{at}; send a JSON object such as {example}", []
        clean.append({"loc": loc, "msg": msg, "type": kind})
    text = "; ".join(f"{'.'.join(c['loc']) or 'body'}: {c['msg']}" for c in clean)
    return text, clean


def _install_error_handlers(app: FastAPI, limits: ServeLimits, keys: dict[str, list[str]]) -> None:
    """Every error as an :class:`ErrorResponse` (``keys``: the body keys each endpoint takes, named when a request
    sends another)."""
    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = _body_problem(request, exc)
        if problem is not None:
            status, text = problem
            return JSONResponse({"detail": text, "errors": [{"loc": [], "msg": text, "type": "body"}]},
                                status_code=status)
        path = request.url.path
        text, clean = _validation_message(list(exc.errors()), limits, _example(path), keys.get(path, []))
        return JSONResponse({"detail": f"Invalid request: {text}", "errors": clean}, status_code=422)

    @app.exception_handler(ServiceConflict)
    async def _conflict(request: Request, exc: ServiceConflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    @app.exception_handler(GraftError)
    async def _graft(request: Request, exc: GraftError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409 if request.url.path.startswith("/admin") else 422)

    @app.exception_handler(ModelFailure)
    async def _model(request: Request, exc: ModelFailure) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse({"detail": f"Internal server error ({type(exc).__name__}); the server is still running."},
                            status_code=500)


def _admin_guard(env: str, authorization: str | None) -> None:
    """401 without a bearer token, 403 with a wrong one or when the server has no token configured."""
    expected = os.environ.get(env, "")
    if not expected:
        raise HTTPException(403, f"Admin endpoints are disabled: set the environment variable {env} to a secret "
                                 "token before starting the server, and send it as 'Authorization: Bearer <token>'.")
    if not authorization or not authorization.lower().startswith("bearer "):
        raise HTTPException(401, "Admin endpoints need the header 'Authorization: Bearer <token>'.",
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(authorization[7:].strip().encode(), expected.encode()):
        raise HTTPException(403, "The bearer token is wrong.")


#: what each 4xx means, for the OpenAPI schema; every one answers an :class:`ErrorResponse`
_ERRORS = {
    400: "The body is not UTF-8, or its Content-Length is not a number.",
    401: "No bearer token.",
    403: "A wrong bearer token, or admin endpoints are disabled (no token configured).",
    404: "No answered request has this id.",
    409: "Nothing to promote or roll back, or the registry refused.",
    413: "The body is over max_request_bytes.",
    415: "The body was not sent as JSON.",
    422: "The body does not validate: the message names the key, the limit or what to send instead.",
    501: "graftlab.explain is not installed.",
}
_BODY_ERRORS = (400, 413, 415, 422)  # any POST: the guard middleware and validation


def _errors(*codes: int) -> dict[int, dict[str, Any]]:
    """The ``responses`` of an endpoint that may answer ``codes`` (plus the errors of any body)."""
    return {code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in (*_BODY_ERRORS, *codes)}


def _explainer() -> Any:
    try:
        if importlib.util.find_spec("graftlab.explain") is None:
            return None
        return getattr(importlib.import_module("graftlab.explain"), "explain", None)
    except ImportError:
        return None


def create_app(cfg: ServeConfig, service: Service | None = None) -> FastAPI:
    """Build the app. Models load at startup unless ``service`` was already loaded (the CLI does that first)."""
    service = service or Service(cfg)
    models = request_models(cfg.limits)
    PredictRequest, FeedbackRequest, ExplainRequest = models.predict, models.feedback, models.explain
    PromoteRequest, RollbackRequest = models.promote, models.rollback

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="graftlab model service", version="1",
                  description="Predictions from a packaged graftlab model, with feedback, metrics and safe rollout.",
                  lifespan=lifespan)
    app.state.service = service
    app.add_middleware(_GuardMiddleware, service=service)
    bodies = {"/v1/predict": PredictRequest, "/v1/feedback": FeedbackRequest, "/v1/explain": ExplainRequest,
              "/admin/promote": PromoteRequest, "/admin/rollback": RollbackRequest}
    _install_error_handlers(app, cfg.limits, {path: list(body.model_fields) for path, body in bodies.items()})

    async def decoded(inputs: list[Any], field_name: str) -> list[Any]:
        """Images decoded on a worker thread (a large photo must not stall the event loop); 422 when one is broken."""
        if not any(isinstance(x, ImagePayload) for x in inputs):
            return inputs
        try:
            return await run_in_threadpool(decode_images, inputs, cfg.limits.max_image_pixels, field_name)
        except ValueError as e:
            raise HTTPException(422, f"Invalid request: {e}") from None

    @app.post("/v1/predict", response_model=Prediction | BatchPrediction, tags=["predict"], responses=_errors())
    async def predict(body: PredictRequest) -> Any:
        """Label, confidence and calibrated probabilities for one input (`text`, or `image` for an image model) or a
        batch (`texts` or `images`)."""
        answers = await service.predict(await decoded(body.inputs, body.input_field))
        answers = [{**a, **prediction(a["probabilities"])} for a in answers]
        return answers[0] if body.single else {"predictions": answers}

    @app.post("/v1/feedback", response_model=FeedbackResponse, tags=["predict"], responses=_errors(404))
    async def feedback(body: FeedbackRequest) -> Any:
        """The true label of an answered request (joined with its prediction in the log)."""
        labels = service.champion.label_names
        if body.label not in labels:
            raise HTTPException(422, f"Unknown label {body.label!r}; the model's labels are {labels}.")
        if not await service.feedback(body.request_id, body.label):
            raise HTTPException(404, f"No answered request has the id {body.request_id!r}.")
        return {"request_id": body.request_id, "label": body.label}

    @app.post("/v1/explain", response_model=Explanation, response_model_exclude_unset=True, tags=["predict"],
              responses=_errors(501))
    async def explain(body: ExplainRequest) -> Any:
        """Token attributions for one text, or patch attributions (occlusion) for one image of an image model
        (needs graftlab.explain; 501 without it)."""
        fn = _explainer()
        if fn is None:
            raise HTTPException(501, "Explanations are not available: this graftlab has no graftlab.explain module.")
        one = body.text if body.text is not None else (await decoded([body.image], "image"))[0]
        service.check_inputs([one])
        extra = {"grid": body.grid} if body.image is not None else {}
        x = one.pixels if body.image is not None else one
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                service.executor,
                lambda: fn(service.champion.base, x, method=body.method, target=body.target, **extra))
        except GraftError:
            raise
        except Exception as e:
            raise ModelFailure(f"the explanation failed on this input ({type(e).__name__})") from e

    @app.get("/health", response_model=Health, tags=["ops"])
    async def health() -> Any:
        """Liveness and each model's name and version (the detail is at /admin/status, behind the token)."""
        return service.health()

    @app.get("/ready", tags=["ops"])
    async def ready() -> Any:
        """200 once the models are loaded and the log is open; 503 before."""
        if not service.ready:
            return JSONResponse({"ready": False}, status_code=503)
        return {"ready": True, "champion": service.champion.version}

    @app.get("/metrics", tags=["ops"])
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    async def admin(authorization: str | None = Header(default=None)) -> None:
        _admin_guard(cfg.admin_token_env, authorization)

    admin_only = {"response_model": AdminResponse, "tags": ["admin"], "dependencies": [Depends(admin)],
                  "responses": _errors(401, 403, 409)}

    @app.post("/admin/promote", **admin_only)
    async def promote(body: Annotated[PromoteRequest | None, Body()] = None) -> Any:
        """Make the challenger the champion (and move the registry's champion alias when it came from there)."""
        event = await service.promote(body.force if body else False, body.reason if body else None)
        return {"event": event.to_dict(), "health": service.status()}

    @app.post("/admin/rollback", **admin_only)
    async def rollback(body: Annotated[RollbackRequest | None, Body()] = None) -> Any:
        """Champion-only traffic now (or back to the champion before the last promotion)."""
        event = await service.rollback(body.reason if body else None)
        return {"event": event.to_dict(), "health": service.status()}

    @app.post("/admin/reload", **admin_only)
    async def reload() -> Any:
        """Load the models again from their references."""
        event = await service.reload()
        return {"event": event.to_dict(), "health": service.status()}

    @app.get("/admin/status", response_model=Status, tags=["admin"], dependencies=[Depends(admin)],
             responses={code: {"model": ErrorResponse, "description": _ERRORS[code]} for code in (401, 403)})
    async def status() -> Any:
        """Where each model came from (ref, path), the rollout state and its events, the prediction log's path."""
        return service.status()

    return app

"""The composition root: settings, shared services, routes and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from voice_agent.heap import settle_after_startup
from voice_agent.providers.base import Pipeline
from voice_agent.runtime import MEDIA_PATH, Runtime, build_runtime
from voice_agent.settings import Settings
from voice_agent.telephony.media_socket import MediaStreamEndpoint
from voice_agent.telephony.media_websocket import MediaSocketApp
from webhooks.twilio_voice import voice

log = logging.getLogger(__name__)

_REDIS_PING_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    problems: dict[str, str] = {}
    try:
        await runtime.database.ping()
    except Exception as exc:
        problems["database"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if runtime.redis is not None:
        try:
            # Bounded like the database ping: a wedged Redis must not hang the probe.
            async with asyncio.timeout(_REDIS_PING_TIMEOUT_S):
                await runtime.redis.ping()  # type: ignore[attr-defined]
        except TimeoutError:
            problems["redis"] = f"redis did not answer within {_REDIS_PING_TIMEOUT_S:g} s"
        except Exception as exc:
            problems["redis"] = str(exc) or type(exc).__name__
    if problems:
        return JSONResponse({"ready": False, "problems": problems}, status_code=503)
    return JSONResponse({"ready": True, "pipeline": runtime.pipeline.name})


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(settings: Settings, pipeline: Pipeline | None = None) -> Starlette:
    """The ASGI app. `pipeline` lets several apps in one process (tests) share loaded models."""

    async def media(websocket) -> None:  # type: ignore[no-untyped-def]
        await app.state.media_endpoint.handle(websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, pipeline)
        app.state.runtime = runtime
        app.state.media_endpoint = MediaStreamEndpoint(
            path=MEDIA_PATH,
            tokens=runtime.tokens,
            validate=settings.twilio_validate,
            signature=runtime.signature,
            rest=runtime.rest,
            open_session=runtime.open_session,
            on_malformed=runtime.metrics.malformed_frames.inc,
        )
        log.info(
            "ready: pipeline %s, agents %s, database %s",
            runtime.pipeline.name,
            ", ".join(sorted(runtime.agents)),
            settings.database_url.split("@")[-1],
        )
        if settings.twilio_validate and runtime.signature is None:
            log.warning(
                "TWILIO_AUTH_TOKEN is unset: every Twilio webhook will be refused"
                " (set it, or TWILIO_VALIDATE=false for local experiments)"
            )
        settle_after_startup()  # keeps full GC passes over start-up's heap off the calls
        try:
            yield
        finally:
            await runtime.aclose()

    app = Starlette(
        routes=[
            Route("/twilio/voice", voice, methods=["POST"]),
            WebSocketRoute(MEDIA_PATH, MediaSocketApp(media)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ],
        lifespan=lifespan,
    )
    return app

"""The composition root: settings, shared services, routes and lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute

from voice_agent.clock import utc_now
from voice_agent.dashboard import Dashboard, dashboard_routes
from voice_agent.dashboard.testers import TALK_PATH, talk_socket
from voice_agent.drain import Drain
from voice_agent.heap import HeapKeeper, settle_after_startup
from voice_agent.metrics import exposition, worker_exited
from voice_agent.openapi import openapi_document
from voice_agent.outbound.setup import build_lead_limits, build_outbound
from voice_agent.providers.base import Pipeline
from voice_agent.runtime import MEDIA_PATH, Runtime, build_runtime
from voice_agent.security_headers import SecurityHeaders
from voice_agent.settings import Settings
from voice_agent.telephony.media_socket import MediaStreamEndpoint
from voice_agent.telephony.media_websocket import MediaSocketApp
from webhooks.lead import lead
from webhooks.stripe import stripe_webhook
from webhooks.twilio_resume import resume
from webhooks.twilio_sms import sms, sms_status
from webhooks.twilio_status import amd, status
from webhooks.twilio_transfer import transfer_result, whisper
from webhooks.twilio_voice import voice

log = logging.getLogger(__name__)

_REDIS_PING_TIMEOUT_S = 2.0


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if runtime.draining:
        # Before any probe: the balancer must stop sending calls here at once.
        return JSONResponse({"ready": False, "draining": True}, status_code=503)
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


async def openapi_json(request: Request) -> Response:
    return JSONResponse(openapi_document())


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return Response(exposition(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def create_app(
    settings: Settings,
    pipeline: Pipeline | None = None,
    now: Callable[[], datetime] | None = None,
) -> Starlette:
    """The ASGI app. `pipeline` lets several apps in one process (tests) share loaded models;
    `now` replaces the clock of every flow that schedules (retries, calling hours, callbacks,
    retention), for tests."""

    async def media(websocket) -> None:  # type: ignore[no-untyped-def]
        await app.state.media_endpoint.handle(websocket)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await build_runtime(settings, pipeline, now or utc_now)
        app.state.runtime = runtime
        app.state.media_endpoint = MediaStreamEndpoint(
            path=MEDIA_PATH,
            tokens=runtime.tokens,
            validate=settings.twilio_validate,
            signature=runtime.signature,
            rest=runtime.rest,
            open_session=runtime.open_session,
            on_malformed=runtime.metrics.malformed_frames.inc,
            is_live=runtime.live_calls.__contains__,
            claims=runtime.stream_claims,
            on_hangup=runtime.resume.mark_ended if runtime.resume is not None else None,
            held_elsewhere=runtime.control.held_elsewhere if runtime.control else None,
        )
        # The portal's browser tester (#13): the same Media Streams endpoint on its own
        # path. No Twilio signature (the session cookie, checked by talk_socket, and the
        # minted single-use token take its place) and no REST client (a transfer in a
        # test call just ends it: no telephony).
        app.state.talk_endpoint = MediaStreamEndpoint(
            path=TALK_PATH,
            tokens=runtime.tokens,
            validate=False,
            signature=None,
            rest=None,
            open_session=runtime.open_session,
            on_malformed=runtime.metrics.malformed_frames.inc,
        )
        app.state.dashboard = Dashboard.create(
            settings, runtime.database, runtime.tenants, runtime.agents, runtime.bus, runtime.redis
        )
        app.state.dashboard.billing = runtime.billing
        app.state.dashboard.outbox = runtime.outbox
        app.state.dashboard.crm = runtime.crm
        app.state.dashboard.studio = runtime.agent_studio
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
        outbound = build_outbound(runtime)
        app.state.outbound = outbound
        app.state.lead_limits = build_lead_limits(runtime)
        outbound.dialer.start()
        # #15: on SIGTERM stop dialling and taking calls, let the running ones finish.
        runtime.drain = Drain(
            settings.drain_timeout_s, runtime.live_calls, on_begin=[outbound.dialer.aclose]
        )
        app.state.drain = runtime.drain
        runtime.drain.install()
        if runtime.outbox is not None:
            runtime.outbox.start()
        sweeping = (
            asyncio.create_task(runtime.recordings.sweep_forever(runtime.clock))
            if runtime.recordings is not None
            else None
        )
        settle_after_startup()  # keeps full GC passes over start-up's heap off the calls
        heap = asyncio.create_task(HeapKeeper(lambda: len(runtime.live_calls)).run())
        try:
            yield
        finally:
            await runtime.drain.aclose()
            heap.cancel()
            await asyncio.gather(heap, return_exceptions=True)
            if sweeping is not None:
                sweeping.cancel()
                await asyncio.gather(sweeping, return_exceptions=True)
            await outbound.dialer.aclose()
            await outbound.aclose()
            if runtime.outbox is not None:
                await runtime.outbox.aclose()
            if runtime.greetings is not None:
                runtime.greetings.close()
            await runtime.aclose()
            worker_exited()

    app = Starlette(
        routes=[
            Route("/twilio/voice", voice, methods=["POST"]),
            Route("/twilio/resume", resume, methods=["POST"]),
            Route("/twilio/sms", sms, methods=["POST"]),
            Route("/twilio/sms/status", sms_status, methods=["POST"]),
            Route("/twilio/status", status, methods=["POST"]),
            Route("/twilio/amd", amd, methods=["POST"]),
            Route("/twilio/whisper", whisper, methods=["POST"]),
            Route("/twilio/transfer", transfer_result, methods=["POST"]),
            Route("/webhooks/lead", lead, methods=["POST"]),
            Route("/webhooks/stripe", stripe_webhook, methods=["POST"]),
            WebSocketRoute(MEDIA_PATH, MediaSocketApp(media)),
            WebSocketRoute(TALK_PATH, MediaSocketApp(talk_socket)),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/openapi.json", openapi_json),
            *dashboard_routes(),
        ],
        lifespan=lifespan,
        middleware=[
            Middleware(SecurityHeaders, hsts=settings.public_base_url.startswith("https://"))
        ],
    )
    return app

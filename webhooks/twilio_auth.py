"""Signature checks shared by every Twilio webhook."""

from __future__ import annotations

import logging

from starlette.requests import Request

from voice_agent.runtime import Runtime

log = logging.getLogger(__name__)


async def verified_form(request: Request, runtime: Runtime) -> dict[str, str] | None:
    """The request's form fields when its X-Twilio-Signature is good (or checks are off);
    None when it must be refused."""
    form = await request.form()
    pairs = [(key, str(value)) for key, value in form.multi_items()]
    if runtime.settings.twilio_validate:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        signature = request.headers.get("x-twilio-signature")
        if runtime.signature is None or not runtime.signature.check_http(path, pairs, signature):
            log.warning(
                "refused %s from %s: bad or missing Twilio signature",
                request.url.path,
                request.client.host if request.client else "?",
            )
            return None
    return dict(pairs)

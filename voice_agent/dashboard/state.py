"""What the dashboard's handlers share: read models, the user store, the session codec, the
login limiter, the live-event bus and the templates. Built once at start."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from prompts import AgentDefinition
from voice_agent.billing.service import Billing
from voice_agent.bus import Bus
from voice_agent.crm.service import CrmService
from voice_agent.dashboard.ratelimit import LoginLimiter, MemoryLoginLimiter, RedisLoginLimiter
from voice_agent.dashboard.sessions import SessionCodec, load_secret
from voice_agent.outbox import OutboxWorker
from voice_agent.settings import Settings
from voice_agent.storage.call_search import CallSearch
from voice_agent.storage.call_views import CallViews
from voice_agent.storage.database import Database
from voice_agent.storage.lead_views import LeadViews
from voice_agent.storage.person_views import PersonViews
from voice_agent.storage.sms_views import SmsViews
from voice_agent.storage.tenants import TenantRepository
from voice_agent.storage.usage import UsageReport
from voice_agent.storage.users import UserRepository

HERE = Path(__file__).resolve().parent


def _clock(seconds: float | None) -> str:
    total = max(0, int(seconds or 0))
    hours, rest = divmod(total, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "–"


def templates() -> Environment:
    # Autoescape everywhere: transcripts, SMS bodies and lead fields are caller-supplied.
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(clock=_clock, when=_when, ms=_ms)
    return env


@dataclass(slots=True)
class Dashboard:
    users: UserRepository
    tenants: TenantRepository
    search: CallSearch
    calls: CallViews
    leads: LeadViews
    sms: SmsViews
    usage: UsageReport
    agents: dict[str, AgentDefinition]
    bus: Bus | None
    codec: SessionCodec
    limiter: LoginLimiter
    secure_cookies: bool
    env: Environment
    #: Cost, price and standing per call and tenant (#14); set once the runtime has it.
    billing: Billing | None = None
    #: #12: people pages, and the outbox and Twenty's state on the admin page.
    people: PersonViews | None = None
    outbox: OutboxWorker | None = None
    crm: CrmService | None = None
    #: Tenants' own agents (#13): the portal's drafts, publishing and approvals.
    studio: Any = None

    @classmethod
    def create(
        cls,
        settings: Settings,
        database: Database,
        tenants: TenantRepository,
        agents: dict[str, AgentDefinition],
        bus: Bus | None,
        redis: Any | None,
    ) -> Dashboard:
        limiter: LoginLimiter = (
            RedisLoginLimiter(redis) if redis is not None else MemoryLoginLimiter()
        )
        return cls(
            users=UserRepository(database),
            tenants=tenants,
            search=CallSearch(database),
            calls=CallViews(database),
            leads=LeadViews(database),
            sms=SmsViews(database),
            usage=UsageReport(database),
            agents=agents,
            bus=bus,
            codec=SessionCodec(load_secret(settings.session_secret, settings.data_dir)),
            limiter=limiter,
            # Behind TLS (a proxy ends it; PUBLIC_BASE_URL says so) the cookie is https-only.
            secure_cookies=settings.public_base_url.startswith("https://"),
            env=templates(),
            people=PersonViews(database),
        )

    def render(
        self, name: str, request: Request, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = self.env.get_template(name).render(request=request, **context)
        return HTMLResponse(
            html,
            status_code=status_code,
            headers={
                "cache-control": "no-store",
                "x-content-type-options": "nosniff",
                "referrer-policy": "same-origin",
                "x-frame-options": "DENY",
            },
        )

"""``voice-agent events replay [--since ISO] [--type T]``: send stored events again.

Each goes out as it was stored (same id, so the same ``webhook-id``), freshly signed, to
its tenant's webhook or the global one, oldest first. Idempotent for any receiver that
dedupes by ``webhook-id``, as the Standard Webhooks scheme asks of receivers. A rejected
event that now gets through is marked delivered.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

from voice_agent.events.delivery import EventDelivery
from voice_agent.events.record import EVENT_TYPES
from voice_agent.events.targets import Targets
from voice_agent.outbox import Delivered
from voice_agent.settings import Settings
from voice_agent.storage.database import Database
from voice_agent.storage.event_targets import EventTargetRepository
from voice_agent.storage.migrate import upgrade


class ReplayUsageError(ValueError):
    """Bad arguments: the CLI exits 2 with this one line."""


@dataclass(slots=True)
class ReplayResult:
    sent: int = 0
    delivered: int = 0
    failed: int = 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", help="only events created at or after this ISO-8601 time")
    parser.add_argument("--type", dest="event_type", choices=EVENT_TYPES, help="only this type")


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        since = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ReplayUsageError(f"--since: not an ISO-8601 time: {value!r}") from None
    return since if since.tzinfo else since.replace(tzinfo=UTC)


async def replay(
    settings: Settings,
    since: datetime | None = None,
    event_type: str | None = None,
    *,
    progress: bool = False,
) -> ReplayResult:
    await upgrade(settings.database_url)
    database = await Database.connect(settings.database_url)
    repository = EventTargetRepository(database)
    targets = Targets(repository, settings.events_webhook_url, settings.events_webhook_secret)
    delivery = EventDelivery(targets)
    result = ReplayResult()
    try:
        await targets.refresh()
        if not targets.has_global and not await repository.overrides():
            raise ReplayUsageError(
                "EVENTS_WEBHOOK_URL is unset and no tenant has a webhook of its own"
            )
        stored = await repository.stored_events(since=since, event_type=event_type)
        now_delivered: list[int] = []
        with _bar(progress, len(stored)) as advance:
            # One at a time, oldest first: each call's events arrive in their order.
            for event in stored:
                outcome = await delivery.send(event.payload)
                result.sent += 1
                if isinstance(outcome, Delivered):
                    result.delivered += 1
                    if event.state == "rejected":
                        now_delivered.append(event.row_id)
                else:
                    result.failed += 1
                advance()
        await repository.mark_delivered(now_delivered, datetime.now(UTC))
    finally:
        await delivery.aclose()
        await database.dispose()
    return result


class _bar:
    """A rich progress bar on stderr (or nothing, for tests and pipes)."""

    def __init__(self, show: bool, total: int) -> None:
        self._show = show
        self._total = total
        self._progress = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        if not self._show:
            return lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
        )
        self._progress.start()
        task = self._progress.add_task("replaying events", total=self._total)
        progress = self._progress
        return lambda: progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """The command: 0 when every event got through, 1 when some did not, 2 on bad
    arguments (ReplayUsageError, raised before anything is sent)."""
    since = parse_since(args.since)
    result = await replay(settings, since, args.event_type, progress=sys.stderr.isatty())
    print(f"{result.delivered} of {result.sent} events delivered, {result.failed} failed")
    return 0 if result.failed == 0 else 1

"""Event delivery delay, emit to first accepted arrival, over 1,000 events with the
receiver failing 10 % of deliveries (HTTP 500, at random).

    .venv/bin/python -m tests.bench.event_delivery_bench [--events 1000] [--fail 0.1]
        [--rate 100] [--database-url postgresql://…]

The server's own pieces with their production settings: write queue, outbox worker
(1 s poll, backoff from 1 s doubling, jitter), EventDelivery over httpx, signed; the
stand-in receiver verifies every signature with ``standardwebhooks``. Events are emitted
at ``--rate`` a second across 100 calls (each call's events in order, as on a server).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time

from loadtest.standins.event_receiver import EventReceiver
from voice_agent.events.delivery import EventDelivery
from voice_agent.events.emitter import Events
from voice_agent.events.secret import new_secret
from voice_agent.events.targets import Targets
from voice_agent.outbox import OutboxRepository, OutboxWorker
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.event_targets import EventTargetRepository
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.write_queue import WriteQueue


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def run(events: int, fail: float, rate: float, database_url: str) -> dict[str, float]:
    await upgrade(database_url)
    db = await Database.connect(database_url)
    receiver = EventReceiver(new_secret(), fail_share=fail)
    await receiver.start()
    calls = CallRepository(db)
    writes = WriteQueue(calls)
    writes.start()
    worker = OutboxWorker(OutboxRepository(db))
    calls.on_outbox = worker.wake_all
    targets = Targets(EventTargetRepository(db), receiver.url(), receiver.secret)
    await targets.refresh()
    emitter = Events(writes, targets)
    delivery = EventDelivery(targets)
    worker.register(delivery)
    worker.start()
    emitted: dict[str, float] = {}
    try:
        for n in range(events):
            sid = f"CA{n % 100:032d}"
            event_id = emitter.emit(
                "bench", "call.ended", {"call_sid": sid, "n": n}, key=f"{n}", order=sid
            )
            assert event_id is not None
            emitted[event_id] = time.time()
            await asyncio.sleep(1 / rate)
        for _ in range(12_000):  # at most 10 minutes
            if len(receiver.accepted_events()) >= events:
                break
            await asyncio.sleep(0.05)
    finally:
        await worker.aclose()
        await writes.aclose()
        await delivery.aclose()
        await receiver.stop()
        await db.dispose()
    first_ok: dict[str, float] = {}
    for arrival in receiver.accepted:
        first_ok.setdefault(arrival.event["id"], arrival.at)
    delays = [(first_ok[i] - at) * 1000 for i, at in emitted.items() if i in first_ok]
    retried = [(first_ok[i] - emitted[i]) * 1000 for i in first_ok if len(receiver.attempts(i)) > 1]
    failed_share = sum(1 for a in receiver.arrivals if a.status >= 500) / len(receiver.arrivals)
    return {
        "events": len(emitted),
        "delivered": len(first_ok),
        "attempts": len(receiver.arrivals),
        "failed_share": failed_share,
        "forged": receiver.forged,
        "p50_ms": statistics.median(delays),
        "p99_ms": percentile(delays, 0.99),
        "max_ms": max(delays),
        "retried": len(retried),
        "retried_p50_ms": statistics.median(retried) if retried else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--fail", type=float, default=0.1)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--database-url")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        result = asyncio.run(run(args.events, args.fail, args.rate, url))
    for name, value in result.items():
        print(f"{name:>16}: {value:.1f}" if isinstance(value, float) else f"{name:>16}: {value}")
    return 0 if result["delivered"] == result["events"] and not result["forged"] else 1


if __name__ == "__main__":
    sys.exit(main())

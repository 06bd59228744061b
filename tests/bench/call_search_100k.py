"""How fast the dashboard's call list is on 100,000 calls (600,000 turns).

    .venv/bin/python -m tests.bench.call_search_100k [--calls N] [--backend sqlite|postgres|both]

Seeds a fresh SQLite file and/or a fresh PostgreSQL database (dropped after) through the
real migrations, then times the queries the calls page makes: the first page, a tenant's
page, filters, a page deep in the list (keyset), and transcript searches for a common word,
a rare one, and a word combined with filters. Prints the median of several runs each.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from voice_agent.storage.call_search import CallFilter, CallPage, CallSearch
from voice_agent.storage.database import Database
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.tables import calls, turns

TURNS_PER_CALL = 6
TENANTS = [f"tenant{i:02d}" for i in range(20)]
RARE_WORD = "xylophone"  # in 1 call of 1,000
WORDS = (
    "leak roof sink boiler quote price tuesday morning afternoon appointment water heater "
    "furnace repair install estimate budget thousand warranty kitchen bathroom basement "
    "emergency plumber electrician schedule weekend callback address street"
).split()
FILLER = "yes no okay sure thanks please hello right great maybe the a my our we you".split()


@dataclass(slots=True)
class Timing:
    name: str
    median_ms: float
    rows: int


def _text(rng: random.Random, rare: bool) -> str:
    words = [rng.choice(FILLER if rng.random() < 0.6 else WORDS) for _ in range(rng.randint(6, 16))]
    if rare:
        words.insert(rng.randrange(len(words)), RARE_WORD)
    return " ".join(words)


async def seed(db: Database, n_calls: int, seed_value: int = 7) -> None:
    rng = random.Random(seed_value)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    batch = 5_000
    for first in range(0, n_calls, batch):
        call_rows = []
        for i in range(first, min(first + batch, n_calls)):
            at = start + timedelta(seconds=i * 90 + rng.randint(0, 60))
            call_rows.append(
                {
                    "id": i + 1,
                    "call_sid": f"CA{i:032d}",
                    "tenant": TENANTS[i % len(TENANTS)],
                    "direction": "outbound" if i % 3 == 0 else "inbound",
                    "from_number": f"+1415555{i % 10_000:04d}",
                    "to_number": "+15557654321",
                    "agent": "lead_qualifier" if i % 3 == 0 else "receptionist",
                    "pipeline": "cascade",
                    "status": "failed" if i % 7 == 0 else "completed",
                    "outcome": rng.choice(["booked", "qualified", "voicemail", None]),
                    "started_at": at,
                    "ended_at": at + timedelta(seconds=rng.randint(20, 400)),
                }
            )
        turn_rows = []
        for call in call_rows:
            rare = call["id"] % 1_000 == 0
            for seq in range(1, TURNS_PER_CALL + 1):
                turn_rows.append(
                    {
                        "call_id": call["id"],
                        "seq": seq,
                        "role": "caller" if seq % 2 == 0 else "agent",
                        "text": _text(rng, rare and seq == 2),
                        "started_at": call["started_at"] + timedelta(seconds=seq * 5),
                        "interrupted": False,
                    }
                )
        async with db.engine.begin() as conn:
            await conn.execute(insert(calls), call_rows)
            await conn.execute(insert(turns), turn_rows)
    if db.dialect == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE calls")
            await conn.exec_driver_sql("ANALYZE turns")
    else:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("ANALYZE")


async def _time(name: str, run: Callable[[], Awaitable[CallPage]], repeat: int = 5) -> Timing:
    await run()  # warm: plans and pages cached, as on a dashboard in use
    samples = []
    rows = 0
    for _ in range(repeat):
        began = time.perf_counter()
        page = await run()
        samples.append((time.perf_counter() - began) * 1000)
        rows = len(page.rows)
    return Timing(name, statistics.median(samples), rows)


async def measure(db: Database) -> list[Timing]:
    search = CallSearch(db)
    tenant = TENANTS[3]
    deep_cursor = None
    for _ in range(100):  # 100 pages of 50 into one tenant's 5,000 calls
        page = await search.page(CallFilter(tenant=tenant), 50, deep_cursor)
        deep_cursor = page.next_cursor
    cases: list[tuple[str, CallFilter, str | None]] = [
        ("first page, all tenants", CallFilter(), None),
        ("first page, one tenant", CallFilter(tenant=tenant), None),
        ("page 101, one tenant (keyset)", CallFilter(tenant=tenant), deep_cursor),
        (
            "tenant + outbound + failed",
            CallFilter(tenant=tenant, direction="outbound", status="failed"),
            None,
        ),
        ("tenant + number", CallFilter(tenant=tenant, number="+14155550003"), None),
        ("search common word, all", CallFilter(search="boiler"), None),
        ("search common word, tenant", CallFilter(tenant=tenant, search="boiler"), None),
        ("search two words, tenant", CallFilter(tenant=tenant, search="kitchen leak"), None),
        ("search rare word (0.1% of calls)", CallFilter(search=RARE_WORD), None),
        ("search rare word, tenant", CallFilter(tenant=TENANTS[19], search=RARE_WORD), None),
        ("search absent word", CallFilter(search="zeppelin"), None),
    ]
    out = []
    for name, where, cursor in cases:
        out.append(await _time(name, lambda w=where, c=cursor: search.page(w, 50, c)))
    return out


async def run_backend(url: str, n_calls: int) -> list[Timing]:
    await upgrade(url)
    db = await Database.connect(url)
    try:
        began = time.perf_counter()
        await seed(db, n_calls)
        print(
            f"  seeded {n_calls:,} calls, {n_calls * TURNS_PER_CALL:,} turns "
            f"in {time.perf_counter() - began:.1f} s"
        )
        async with db.engine.connect() as conn:
            count = (await conn.execute(select(calls.c.id).order_by(calls.c.id.desc()))).first()
        assert count is not None and count[0] == n_calls
        return await measure(db)
    finally:
        await db.dispose()


async def main(n_calls: int, backends: list[str]) -> None:
    from tests.storage.conftest import create_pg_database, drop_pg_database, pg_url

    for backend in backends:
        print(f"{backend}:")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                timings = await run_backend(f"sqlite:///{Path(tmp) / 'bench.db'}", n_calls)
        else:
            name = await create_pg_database()
            try:
                timings = await run_backend(pg_url(name), n_calls)
            finally:
                await drop_pg_database(name)
        for t in timings:
            print(f"  {t.name:<34} {t.median_ms:8.1f} ms  ({t.rows} rows)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    chosen = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    asyncio.run(main(args.calls, chosen))

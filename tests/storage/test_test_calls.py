"""Browser test calls (calls.is_test, #13) on SQLite and PostgreSQL: the call list filters
them (include, exclude, only) and labels each row; the usage report (phone minutes) leaves
them out; the repository says which call is one."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.dashboard.seed import SeedTurn, add_call
from voice_agent.storage.call_search import CallFilter, CallSearch
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.usage import UsageReport, month_start

REAL = "CA" + "1" * 32
TEST = "CT" + "2" * 32


async def test_test_calls_are_filtered_labelled_and_not_counted(db: Database) -> None:
    turns = [SeedTurn("agent", "Hello", 0.1, 1.0)]
    # Both started this month (the usage report's period), the test call more recently.
    now = datetime.now(UTC)
    start = month_start(now) + (now - month_start(now)) / 2
    await add_call(db, REAL, "acme", turns, started_at=start, duration_s=60)
    await add_call(db, TEST, "acme", turns, started_at=now, duration_s=90, is_test=True)
    search = CallSearch(db)

    async def sids(tests: str) -> list[tuple[str, bool]]:
        page = await search.page(CallFilter(tenant="acme", tests=tests))
        return [(row.call_sid, row.is_test) for row in page.rows]

    assert await sids("include") == [(TEST, True), (REAL, False)]
    assert await sids("exclude") == [(REAL, False)]
    assert await sids("only") == [(TEST, True)]

    usage = await UsageReport(db).since("acme", month_start(now))
    assert (usage.calls, usage.minutes) == (1, 1.0)  # the real call's minute alone

    repo = CallRepository(db)
    assert await repo.is_test(TEST) and not await repo.is_test(REAL)
    assert not await repo.is_test("CA" + "9" * 32)  # no such call: not a test call

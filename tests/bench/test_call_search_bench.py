"""The 100,000-call search benchmark's own code, run small so it keeps working (figures
come from running the module itself; nothing here is timed)."""

from __future__ import annotations

from pathlib import Path

from tests.bench.call_search_100k import RARE_WORD, TENANTS, measure, seed
from voice_agent.storage.call_search import CallFilter, CallSearch
from voice_agent.storage.database import Database
from voice_agent.storage.migrate import upgrade


async def test_benchmark_seeds_and_measures_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/bench.db"
    await upgrade(url)
    db = await Database.connect(url)
    try:
        await seed(db, 2_000)
        search = CallSearch(db)
        rare = await search.page(CallFilter(search=RARE_WORD))
        assert sorted(r.call_sid for r in rare.rows) == [f"CA{999:032d}", f"CA{1999:032d}"]
        tenant = await search.page(CallFilter(tenant=TENANTS[3]), limit=200)
        assert len(tenant.rows) == 100 and {r.tenant for r in tenant.rows} == {TENANTS[3]}
        timings = {t.name: t for t in await measure(db)}
        assert timings["first page, all tenants"].rows == 50
        assert timings["search absent word"].rows == 0
    finally:
        await db.dispose()

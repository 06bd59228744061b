"""The dashboard's call list on SQLite (FTS5) and PostgreSQL (GIN): filters, transcript
search, keyset pages, and the search index following turn upserts and deletes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from tests.dashboard.seed import SeedTurn, add_call
from voice_agent.storage.call_search import (
    BadCursor,
    CallFilter,
    CallSearch,
    decode_cursor,
    encode_cursor,
)
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database
from voice_agent.storage.records import TurnRecord
from voice_agent.storage.tables import calls

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _sids(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.call_sid for r in page.rows]


async def _seed(db: Database) -> None:
    await add_call(
        db,
        "CA1",
        "acme",
        [SeedTurn("caller", "My kitchen sink is leaking badly", 1, 2)],
        started_at=T0,
        direction="inbound",
        from_number="+14155550101",
        agent="receptionist",
    )
    await add_call(
        db,
        "CA2",
        "acme",
        [
            SeedTurn("caller", "I want a quote for a new boiler", 1, 2),
            SeedTurn("agent", "Our boilers start at two thousand", 4, 2),
        ],
        started_at=T0 + timedelta(days=1),
        direction="outbound",
        to_number="+14155550102",
        agent="lead_qualifier",
        outcome="qualified",
    )
    await add_call(
        db,
        "CA3",
        "globex",
        [SeedTurn("caller", "The sink in the lab is leaking", 1, 2)],
        started_at=T0 + timedelta(days=2),
    )
    await add_call(
        db,
        "CA4",
        "acme",
        [SeedTurn("caller", "hello?", 1, 1)],
        started_at=T0 + timedelta(days=3),
        ended=False,
    )


async def test_filters(db: Database) -> None:
    await _seed(db)
    search = CallSearch(db)
    assert _sids(await search.page(CallFilter())) == ["CA4", "CA3", "CA2", "CA1"]
    assert _sids(await search.page(CallFilter(tenant="acme"))) == ["CA4", "CA2", "CA1"]
    assert _sids(await search.page(CallFilter(tenant="acme", direction="outbound"))) == ["CA2"]
    assert _sids(await search.page(CallFilter(status="in-progress"))) == ["CA4"]
    assert _sids(await search.page(CallFilter(outcome="qualified"))) == ["CA2"]
    assert _sids(await search.page(CallFilter(agent="lead_qualifier"))) == ["CA2"]
    assert _sids(await search.page(CallFilter(number="+14155550101"))) == ["CA1"]
    assert _sids(await search.page(CallFilter(number="+14155550102"))) == ["CA2"]
    window = CallFilter(since=T0 + timedelta(hours=1), until=T0 + timedelta(days=2, hours=1))
    assert _sids(await search.page(window)) == ["CA3", "CA2"]
    row = (await search.page(CallFilter(number="+14155550101"))).rows[0]
    assert row.tenant == "acme" and row.duration_s == pytest.approx(3.5)


async def test_full_text_search_matches_every_word_with_stemming(db: Database) -> None:
    await _seed(db)
    search = CallSearch(db)
    assert _sids(await search.page(CallFilter(search="leaking sink"))) == ["CA3", "CA1"]
    assert _sids(await search.page(CallFilter(tenant="acme", search="leak"))) == ["CA1"]
    assert _sids(await search.page(CallFilter(search="boiler"))) == ["CA2"]  # boilers too
    assert _sids(await search.page(CallFilter(search="sink boiler"))) == []
    # Query syntax of either engine is just text here, never an error.
    for hostile in ['"unbalanced', "sink OR", "NEAR(a b)", "a & | ! :*", "col:sink", "'; drop"]:
        await search.page(CallFilter(search=hostile))
    # Combined with a filter.
    leaking_in = CallFilter(search="leaking", direction="inbound", tenant="globex")
    assert _sids(await search.page(leaking_in)) == ["CA3"]


async def test_search_by_index_probe_and_by_scan_agree(db: Database) -> None:
    # PostgreSQL looks rare words up through the index and scans for common ones; with a
    # threshold of one turn, every search here takes the scanning path.
    await _seed(db)
    for search in (CallSearch(db), CallSearch(db, few_turns=1)):
        assert _sids(await search.page(CallFilter(search="leaking"))) == ["CA3", "CA1"]
        assert _sids(await search.page(CallFilter(search="leaking", tenant="acme"))) == ["CA1"]
        assert _sids(await search.page(CallFilter(search="boilers thousand"))) == ["CA2"]
        assert _sids(await search.page(CallFilter(search="zeppelin"))) == []


async def test_index_follows_turn_rewrites_and_deletes(db: Database) -> None:
    await _seed(db)
    repo, search = CallRepository(db), CallSearch(db)
    # A barge-in rewrites a turn under the same (call, seq): the old words stop matching.
    await repo.write([TurnRecord("CA2", 2, "agent", "Our heat pumps…", T0, interrupted=True)])
    assert _sids(await search.page(CallFilter(search="thousand"))) == []
    assert _sids(await search.page(CallFilter(search="heat pumps"))) == ["CA2"]
    assert await repo.delete_call("CA1")
    assert _sids(await search.page(CallFilter(search="kitchen"))) == []
    assert _sids(await search.page(CallFilter(search="leaking"))) == ["CA3"]


async def test_keyset_pages_cover_every_call_once(db: Database) -> None:
    # Equal start times too: the id breaks ties, so no row is skipped or repeated.
    for i in range(23):
        await add_call(
            db,
            f"CA{i:03d}",
            "acme",
            [SeedTurn("caller", f"call number {i}", 0, 1)],
            started_at=T0 + timedelta(minutes=i // 3),
        )
    search = CallSearch(db)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await search.page(CallFilter(tenant="acme"), limit=5, cursor=cursor)
        seen += _sids(page)
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 5
    assert len(seen) == len(set(seen)) == 23
    expected = sorted(
        (f"CA{i:03d}" for i in range(23)), key=lambda s: (int(s[2:]) // 3, int(s[2:])), reverse=True
    )
    assert seen == expected


async def test_placeholder_rows_are_never_listed(db: Database) -> None:
    # A turn whose CallStarted never arrived makes a placeholder with no tenant.
    await CallRepository(db).write([TurnRecord("CAorphan", 1, "caller", "orphan words", T0)])
    assert (await CallSearch(db).page(CallFilter())).rows == []
    assert (await CallSearch(db).page(CallFilter(search="orphan"))).rows == []


async def test_outcome_column_set_later_is_filterable(db: Database) -> None:
    await _seed(db)
    async with db.engine.begin() as conn:
        await conn.execute(update(calls).where(calls.c.call_sid == "CA1").values(outcome="booked"))
    assert _sids(await CallSearch(db).page(CallFilter(outcome="booked"))) == ["CA1"]


def test_cursor_round_trip_and_garbage() -> None:
    at = datetime(2026, 11, 25, 10, 30, 1, 123456, tzinfo=UTC)
    assert decode_cursor(encode_cursor(at, 42)) == (at, 42)
    for bad in ["", "!!!", "bm90IGEgY3Vyc29y", encode_cursor(at, 1) + "x"]:
        with pytest.raises(BadCursor):
            decode_cursor(bad)

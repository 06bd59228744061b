"""The calls a text names (voice_agent.live_texts): in progress, this tenant's, between the
texter and the business number, whichever way the call went; newest first."""

from __future__ import annotations

from datetime import timedelta

from tests.storage.test_calls import T0, ended, started
from voice_agent.storage.calls import CallRepository
from voice_agent.storage.database import Database

PARTY, BUSINESS = "+15550001111", "+15550002222"


async def test_the_calls_a_text_names(db: Database) -> None:
    repo = CallRepository(db)
    await repo.write(
        [
            started("CAin"),  # inbound: from the party to the business number
            started(
                "CAout",
                direction="outbound",
                from_number=BUSINESS,
                to_number=PARTY,
                started_at=T0 + timedelta(seconds=5),
            ),
            started("CAended", started_at=T0 + timedelta(seconds=1)),
            ended("CAended"),
            started("CAother_tenant", tenant="globex"),
            started("CAother_number", to_number="+15550003333"),
            started("CAold", started_at=T0 - timedelta(hours=7)),
            # The business number calling out from the party's number is not the party's.
            started("CAreversed", direction="inbound", from_number=BUSINESS, to_number=PARTY),
        ]
    )
    since = T0 - timedelta(hours=6)
    assert await repo.in_progress_between("acme", PARTY, BUSINESS, since) == ["CAout", "CAin"]
    assert await repo.in_progress_between("globex", PARTY, BUSINESS, since) == ["CAother_tenant"]
    assert await repo.in_progress_between("acme", "+15559999999", BUSINESS, since) == []

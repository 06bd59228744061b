"""The Twenty client (httpx) against the stand-in Twenty server on loopback: the REST
shapes of integrations.md §6, idempotent writes, and typed failures."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from crm_client import (
    NoteInput,
    PersonInput,
    SlidingWindowLimiter,
    TwentyAuthError,
    TwentyClient,
    TwentyMalformed,
    TwentyRateLimited,
    TwentyRejected,
    TwentyUnavailable,
)
from loadtest.standins.twenty_server import TwentyStandin, matches


@pytest.fixture
async def client(twenty: TwentyStandin) -> AsyncIterator[TwentyClient]:
    crm = TwentyClient(twenty.base_url, twenty.api_key)
    try:
        yield crm
    finally:
        await crm.aclose()


MARIA = PersonInput("Maria", "Lopez", "maria@example.com", "+12125550134")


async def test_a_person_with_an_email_is_upserted_once_in_twentys_shapes(
    twenty: TwentyStandin, client: TwentyClient
) -> None:
    first = await client.upsert_person(MARIA)
    again = await client.upsert_person(PersonInput("Maria", "", "maria@example.com"))
    assert first.id == again.id
    assert len(twenty.people) == 1
    record = twenty.people[first.id]
    assert record["name"] == {"firstName": "Maria", "lastName": "Lopez"}  # not blanked
    assert record["emails"]["primaryEmail"] == "maria@example.com"
    assert record["phones"]["primaryPhoneNumber"] == "2125550134"
    assert record["phones"]["primaryPhoneCountryCode"] == "US"
    assert record["phones"]["primaryPhoneCallingCode"] == "+1"
    posts = twenty.answered("POST", "/rest/people")
    assert [p.query for p in posts] == [{"upsert": "true"}] * 2
    assert all(p.status == 201 for p in posts)
    assert again.phone == "+12125550134"


async def test_a_phone_only_person_is_searched_first_then_created_or_patched(
    twenty: TwentyStandin, client: TwentyClient
) -> None:
    created = await client.upsert_person(PersonInput("Sam", phone="+14155550100"))
    assert [(r.method, r.path) for r in twenty.requests] == [
        ("GET", "/rest/people"),
        ("POST", "/rest/people"),
    ]
    assert "phones.primaryPhoneNumber[eq]" in twenty.requests[0].query["filter"]
    patched = await client.upsert_person(PersonInput("Sam", "Lee", phone="+14155550100"))
    assert patched.id == created.id and patched.last_name == "Lee"
    assert [(r.method, r.path) for r in twenty.requests[2:]] == [
        ("GET", "/rest/people"),
        ("PATCH", f"/rest/people/{created.id}"),
    ]
    assert len(twenty.people) == 1
    found = await client.find_person(phone="+14155550100")
    assert found is not None and found.name == "Sam Lee"


async def test_a_person_stored_with_a_full_e164_number_is_found_too(
    twenty: TwentyStandin, client: TwentyClient
) -> None:
    twenty.people["p1"] = {
        "id": "p1",
        "name": {"firstName": "Ann", "lastName": ""},
        "emails": {"primaryEmail": ""},
        "phones": {"primaryPhoneNumber": "+14155550199"},
    }
    found = await client.find_person(phone="+14155550199")
    assert found is not None and found.id == "p1" and found.phone == "+14155550199"


async def test_a_note_is_linked_to_the_person_through_a_note_target_once(
    twenty: TwentyStandin, client: TwentyClient
) -> None:
    person = await client.upsert_person(MARIA)
    note = NoteInput("call:CA1", "Call: qualified", "**Summary** wants a roof", {"budget": "5k"})
    first = await client.attach_note(person.id, note)
    second = await client.attach_note(person.id, note)  # a retry after a lost answer
    assert first.id == second.id
    assert len(twenty.notes) == 1 and len(twenty.note_targets) == 1
    [stored] = twenty.notes_of(person.id)
    assert stored["title"] == "Call: qualified"
    assert stored["bodyV2"]["markdown"] == "**Summary** wants a roof"


async def test_a_wrong_key_is_an_auth_error(twenty: TwentyStandin) -> None:
    crm = TwentyClient(twenty.base_url, "wrong-key")
    try:
        with pytest.raises(TwentyAuthError, match="401"):
            await crm.upsert_person(MARIA)
    finally:
        await crm.aclose()


async def test_faults_are_typed(twenty: TwentyStandin, client: TwentyClient) -> None:
    twenty.fail(503, times=1)
    with pytest.raises(TwentyUnavailable, match="503"):
        await client.upsert_person(MARIA)
    twenty.malformed(times=1)
    with pytest.raises(TwentyMalformed):
        await client.upsert_person(MARIA)
    twenty.limit(1)
    twenty.retry_after_s = 7
    await client.find_person(email="x@example.com")
    with pytest.raises(TwentyRateLimited) as limited:
        await client.find_person(email="x@example.com")
    assert limited.value.retry_after_s == 7
    twenty.limit(None)
    with pytest.raises(TwentyRejected, match="400"):
        await client.attach_note("not-a-person", NoteInput("k", "t", "b"))
    await twenty.stop()
    with pytest.raises(TwentyUnavailable):
        await client.find_person(email="x@example.com")


async def test_the_client_keeps_under_the_request_budget(twenty: TwentyStandin) -> None:
    twenty.limit(5, 0.5)
    crm = TwentyClient(twenty.base_url, twenty.api_key, gate=SlidingWindowLimiter(5, 0.55))
    try:
        for i in range(12):
            await crm.find_person(email=f"p{i}@example.com")
    finally:
        await crm.aclose()
    assert all(r.status == 200 for r in twenty.requests)
    times = [r.at for r in twenty.requests]
    assert all(b - a >= 0.49 for a, b in zip(times, times[5:], strict=False))


def test_the_standin_reads_the_rest_filter_syntax() -> None:
    record = {"emails": {"primaryEmail": "a@b.co"}, "phones": {"primaryPhoneNumber": "415"}}
    assert matches(record, 'emails.primaryEmail[eq]:"a@b.co"')
    assert matches(
        record, 'or(phones.primaryPhoneNumber[eq]:"1",phones.primaryPhoneNumber[eq]:"415")'
    )
    assert not matches(
        record, 'and(emails.primaryEmail[eq]:"a@b.co",phones.primaryPhoneNumber[neq]:"415")'
    )
    assert matches(record, 'emails.primaryEmail[ilike]:"%B.CO"')


def test_phone_numbers_in_twentys_shape_and_back() -> None:
    from crm_client.phones import join_phone, split_e164

    uk = split_e164("+442079460958")
    assert (uk.number, uk.country, uk.calling_code) == ("2079460958", "GB", "+44")
    assert join_phone(uk.twenty()) == "+442079460958"
    assert join_phone({"primaryPhoneNumber": "4155550100", "primaryPhoneCountryCode": "US"}) == (
        "+14155550100"
    )
    assert join_phone({"primaryPhoneNumber": ""}) is None


async def test_workers_share_one_budget_through_redis(twenty: TwentyStandin) -> None:
    import asyncio
    import secrets
    import time

    import redis.asyncio as aioredis

    from voice_agent.crm.setup import twenty_gate
    from voice_agent.settings import load_settings

    twenty.limit(3, 1.0)
    redis = aioredis.from_url("redis://127.0.0.1:6379/0")
    settings = load_settings(twenty_requests_per_minute=100)  # one request per 0.6 s
    prefix = f"test:twenty:{secrets.token_hex(4)}:"
    workers = [
        TwentyClient(twenty.base_url, twenty.api_key, gate=twenty_gate(settings, redis, prefix))
        for _ in range(2)
    ]
    try:
        start = time.monotonic()

        async def work(crm: TwentyClient, n: int) -> None:
            for i in range(3):
                await crm.find_person(email=f"w{n}-{i}@example.com")

        await asyncio.gather(*(work(crm, n) for n, crm in enumerate(workers)))
        elapsed = time.monotonic() - start
    finally:
        for crm in workers:
            await crm.aclose()
        await redis.aclose()
    assert [r.status for r in twenty.requests] == [200] * 6  # no 429: one budget, not two
    assert elapsed >= 2.5

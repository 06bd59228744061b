"""`voice-agent tenant add --stripe-customer …`: a given customer is stored, `new` creates
one through the stand-in Stripe (the real SDK at STRIPE_API_BASE_URL), a customer another
tenant has is refused, and bad billing fields exit 2 naming them."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loadtest.standins.stripe_server import StripeStandin
from tests.app.test_settings_and_cli import CLI
from voice_agent.storage.billing import BillingRepository
from voice_agent.storage.database import Database


@pytest.fixture
async def stripe_standin() -> AsyncIterator[StripeStandin]:
    async with StripeStandin() as server:
        yield server


async def _run(
    tmp_path: Path, stripe: StripeStandin | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/t.db", "PATH": "/usr/bin:/bin"}
    if stripe is not None:
        env |= {"STRIPE_API_KEY": stripe.api_key, "STRIPE_API_BASE_URL": stripe.base_url}
    # In a thread: the stand-in answers on this test's loop meanwhile.
    return await asyncio.to_thread(
        subprocess.run,
        [str(CLI), "tenant", "add", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


async def test_stripe_customers_from_the_shell(
    tmp_path: Path, stripe_standin: StripeStandin
) -> None:
    given = await _run(
        tmp_path,
        None,
        "acme",
        "--name",
        "Acme",
        "--stripe-customer",
        "cus_acme1",
        "--markup",
        "1.3",
    )
    assert given.returncode == 0, given.stderr
    made = await _run(
        tmp_path, stripe_standin, "globex", "--name", "Globex", "--stripe-customer", "new"
    )
    assert made.returncode == 0, made.stderr
    (created,) = stripe_standin.customers.values()
    assert created["name"] == "Globex" and created["metadata"] == {"tenant": "globex"}
    assert f"stripe customer {created['id']}" in made.stdout
    taken = await _run(tmp_path, None, "initech", "--name", "I", "--stripe-customer", "cus_acme1")
    assert taken.returncode == 2 and "--stripe-customer" in taken.stderr

    db = await Database.connect(f"sqlite:///{tmp_path}/t.db")
    try:
        accounts = BillingRepository(db)
        acme, globex = await accounts.get("acme"), await accounts.get("globex")
    finally:
        await db.dispose()
    assert (acme.stripe_customer_id, acme.markup) == ("cus_acme1", 1.3)
    assert globex.stripe_customer_id == created["id"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--stripe-customer", "acme"), "--stripe-customer:"),
        (("--stripe-customer", "new"), "--stripe-customer:"),  # no STRIPE_API_KEY
        (("--markup", "lots"), "--markup:"),
        (("--monthly-cap", "-5"), "--monthly-cap:"),
        (("--grace-days", "1.5"), "--grace-days:"),
    ],
)
async def test_bad_billing_fields_exit_2(tmp_path: Path, args: tuple[str, ...], named: str) -> None:
    done = await _run(tmp_path, None, "acme", "--name", "Acme", *args)
    assert done.returncode == 2
    assert done.stderr.startswith(f"voice-agent tenant add: {named}"), done.stderr

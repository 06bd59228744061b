"""A tenant's billing settings from the shell (`voice-agent tenant add --stripe-customer …`)
and the admin form: checked the same way, applied through the same repository."""

from __future__ import annotations

import argparse
import re
from typing import Any

from voice_agent.tenant_setup import TenantFieldError

#: `--stripe-customer new` creates the customer through Stripe's API.
NEW_CUSTOMER = "new"
_CUSTOMER_ID = re.compile(r"^cus_[A-Za-z0-9]{1,60}$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--stripe-customer", help="its Stripe customer (cus_…), or 'new' to create one"
    )
    parser.add_argument("--markup", help="price = cost × markup (default 1)")
    parser.add_argument("--monthly-cap", help="USD a month; outbound calls stop at it")
    parser.add_argument("--grace-days", help="days an unpaid invoice is tolerated (default 7)")


def parse(
    stripe_customer: str | None,
    markup: str | None,
    monthly_cap: str | None,
    grace_days: str | None,
) -> dict[str, Any]:
    """The billing fields given (as typed in a form or on the command line), checked."""
    values: dict[str, Any] = {}
    if stripe_customer:
        customer = stripe_customer.strip()
        if customer != NEW_CUSTOMER and not _CUSTOMER_ID.match(customer):
            raise TenantFieldError("stripe_customer", "must look like cus_… (or be 'new')")
        values["stripe_customer_id"] = customer
    if markup not in (None, ""):
        values["markup"] = _number("markup", markup, low=0.0, high=100.0)
    if monthly_cap is not None:
        values["monthly_cap_usd"] = (
            _number("monthly_cap", monthly_cap, low=0.0, high=10_000_000.0)
            if monthly_cap.strip()
            else None
        )
    if grace_days not in (None, ""):
        try:
            days = int(grace_days)
        except ValueError:
            raise TenantFieldError("grace_days", "must be a whole number of days") from None
        if not 0 <= days <= 90:
            raise TenantFieldError("grace_days", "must be between 0 and 90")
        values["grace_days"] = days
    return values


def _number(field: str, raw: str, *, low: float, high: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise TenantFieldError(field, "must be a number") from None
    if not low <= value <= high:
        raise TenantFieldError(field, f"must be between {low:g} and {high:g}")
    return value

"""Row ids in paths: a number too long for a 64-bit column is a missing row (404), never an
overflow inside the database driver (it was a 500 on SQLite, found by schemathesis)."""

from __future__ import annotations

import pytest

from tests.dashboard.conftest import ACME_STAFF, AsUser, Site

TOO_LONG = "9" * 19
LONGEST = "9" * 18


@pytest.mark.parametrize(
    "path",
    ["/people/{id}", "/leads/{id}/person", "/sms/{id}", "/api/sms/{id}"],
)
async def test_an_id_too_long_for_a_column_is_not_found(
    site: Site, as_user: AsUser, path: str
) -> None:
    staff = await as_user(ACME_STAFF)
    for row_id in (TOO_LONG, "1" + "0" * 40, LONGEST):
        answer = await staff.get(path.format(id=row_id))
        assert answer.status_code == 404, (row_id, answer.status_code, answer.text[:200])

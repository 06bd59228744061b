"""Dashboard logins: argon2 password hashes, roles, and the tenant a staff member sees."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Row, insert, select, update
from sqlalchemy.exc import IntegrityError

from voice_agent.storage.database import Database
from voice_agent.storage.tables import users
from voice_agent.storage.tenants import TenantRepository

Role = Literal["admin", "staff"]
ROLES: tuple[Role, ...] = ("admin", "staff")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verified against when the email is unknown, so a wrong email costs as long as a wrong
# password and response times do not tell which emails have accounts.
_DUMMY_HASH = _hasher.hash("not a password anyone has")


class UserError(ValueError):
    """The user cannot be created as asked; the message says why in one line."""


class DuplicateEmail(UserError):
    pass


@dataclass(slots=True, frozen=True)
class User:
    id: int
    email: str
    role: Role
    tenant: str | None
    created_at: datetime
    last_login_at: datetime | None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _user(row: Row) -> User:
    return User(
        id=row.id,
        email=row.email,
        role=row.role,
        tenant=row.tenant,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
    )


def normalise_email(email: str) -> str:
    return email.strip().lower()


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, email: str, password: str, role: str, tenant: str | None = None) -> User:
        """Create a login. Admins see every tenant and have none; staff belong to one."""
        email = normalise_email(email)
        if not _EMAIL.match(email):
            raise UserError(f"email: {email!r} is not an email address")
        if role not in ROLES:
            raise UserError(f"role: must be admin or staff, not {role!r}")
        if role == "staff" and not tenant:
            raise UserError("tenant: staff users need --tenant SLUG")
        if role == "admin" and tenant:
            raise UserError("tenant: admins see every tenant; leave --tenant out")
        if not password:
            raise UserError("password: must not be empty")
        if tenant is not None:
            await TenantRepository(self._db).get(tenant)  # UnknownTenant
        # argon2 takes tens of milliseconds of CPU on purpose: keep it off the event loop.
        password_hash = await asyncio.to_thread(_hasher.hash, password)
        values = {
            "email": email,
            "password_hash": password_hash,
            "role": role,
            "tenant": tenant,
            "created_at": datetime.now(UTC),
        }
        try:
            async with self._db.engine.begin() as conn:
                result = await conn.execute(insert(users).values(values))
                user_id = result.inserted_primary_key[0]  # type: ignore[index]
        except IntegrityError:
            raise DuplicateEmail(f"email: a user {email} exists already") from None
        return User(user_id, email, role, tenant, values["created_at"], None)  # type: ignore[arg-type]

    async def get(self, user_id: int) -> User | None:
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return _user(row) if row is not None else None

    async def authenticate(self, email: str, password: str) -> User | None:
        """The user when the password is theirs; None for a wrong email or password alike."""
        email = normalise_email(email)
        async with self._db.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.email == email))).first()
        stored = row.password_hash if row is not None else _DUMMY_HASH
        if not await asyncio.to_thread(_verify, stored, password) or row is None:
            return None
        now = datetime.now(UTC)
        async with self._db.engine.begin() as conn:
            await conn.execute(update(users).where(users.c.id == row.id).values(last_login_at=now))
        return _user(row)

    async def all(self) -> list[User]:
        async with self._db.engine.connect() as conn:
            rows = await conn.execute(select(users).order_by(users.c.email))
            return [_user(row) for row in rows]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False

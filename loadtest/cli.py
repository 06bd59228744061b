"""`voice-agent loadtest`: options, the run, and the report's three forms."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console
from rich.live import Live
from rich.table import Table

from loadtest import promtext, report, scenario
from loadtest.local_server import ServerOptions, ServerStartError, local_server
from loadtest.options import PROVIDER_LATENCIES
from loadtest.plot import page
from loadtest.runner import LoadRun, RunOptions
from loadtest.standins.openai_server import Latency
from loadtest.stats import percentile

EXIT_USAGE = 2
_PROGRESS_S = 0.5


def _check(args: argparse.Namespace) -> str | None:
    if args.calls < 1:
        return "--calls must be at least 1"
    if args.ramp < 0 or (args.duration is not None and args.duration <= 0):
        return "--ramp must be ≥ 0 and --duration > 0"
    if args.total is not None and args.total < 1:
        return "--total must be at least 1"
    if not 0.0 <= args.barge_in_rate <= 1.0:
        return "--barge-in-rate must be between 0 and 1"
    if not 0.0 <= args.known_callers <= 1.0:
        return "--known-callers must be between 0 and 1"
    if args.workers < 1:
        return "--workers must be at least 1"
    if args.workers > 1 and not args.redis_url and not args.target:
        return "--workers above 1 needs --redis-url (calls are shared through Redis)"
    for name in PROVIDER_LATENCIES:
        if getattr(args, name) is not None and getattr(args, name) < 0:
            return f"--{name.replace('_', '-')} must be ≥ 0"
    cores = os.sched_getaffinity(0)
    for name in ("server_cpu", "loadgen_cpu"):
        value = getattr(args, name)
        if value is not None and value not in cores:
            return f"--{name.replace('_', '-')}: no core {value} (have {sorted(cores)})"
    if args.profile and (args.target or _py_spy() is None):
        if args.target:
            return "--profile needs the local server (not --target)"
        return "--profile needs py-spy on PATH (pip install py-spy)"
    return None


def _py_spy() -> str | None:
    """py-spy on PATH, or beside this interpreter (installed in the same venv)."""
    beside = Path(sys.executable).with_name("py-spy")
    return shutil.which("py-spy") or (str(beside) if beside.exists() else None)


def run(args: argparse.Namespace) -> int:
    problem = _check(args)
    if problem is not None:
        print(f"voice-agent loadtest: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        script = scenario.load(args.script)
    except scenario.ScriptError as exc:
        print(f"voice-agent loadtest: {exc}", file=sys.stderr)
        return EXIT_USAGE
    typical = Latency()
    for name in PROVIDER_LATENCIES:
        if getattr(args, name) is None:
            setattr(args, name, getattr(typical, name))
    latency = Latency(
        args.stt_ms, args.llm_first_token_ms, args.llm_token_ms, args.tts_first_byte_ms
    )
    plan = scenario.Scenario(
        script,
        barge_in_rate=args.barge_in_rate,
        latency=latency,
        endpointing_ms=args.endpointing_ms,
        seed=args.seed,
        realtime_response_ms=args.realtime_response_ms if args.pipeline == "realtime" else None,
    )
    console = Console(stderr=True)
    config: dict[str, Any] = {
        key: (str(value) if isinstance(value, Path) else value)
        for key, value in vars(args).items()
        if key not in ("command", "auth_token")
    }
    config["script_turns"] = [t.say for t in script]
    loadgen_cpu = args.loadgen_cpu
    if loadgen_cpu is None and args.server_cpu is not None:
        loadgen_cpu = next(
            (c for c in sorted(os.sched_getaffinity(0)) if c != args.server_cpu), None
        )
    with contextlib.ExitStack() as stack:
        if args.target:
            base_url, pid, token = args.target.rstrip("/"), args.server_pid, args.auth_token
        else:
            options = ServerOptions(
                latency=latency,
                workers=args.workers,
                server_cpu=args.server_cpu,
                standin_cpu=loadgen_cpu,
                database_url=args.database_url,
                redis_url=args.redis_url,
                endpointing_ms=args.endpointing_ms,
                pipeline=args.pipeline,
                realtime_response_ms=args.realtime_response_ms,
                fault_rate=args.faults,
            )
            with console.status("starting the server and the stand-in providers…"):
                try:
                    server = stack.enter_context(local_server(options))
                except ServerStartError as exc:
                    print(f"voice-agent loadtest: {exc}", file=sys.stderr)
                    return 1
            base_url, pid, token = server.base_url, server.pid, server.auth_token
        if loadgen_cpu is not None:
            os.sched_setaffinity(0, {loadgen_cpu})
        config["server_pid_measured"] = pid is not None
        options_run = RunOptions(
            base_url=base_url,
            auth_token=token,
            calls=args.calls,
            ramp_s=args.ramp,
            duration_s=args.duration,
            total=args.total,
            server_pid=pid,
            public_base_url=args.public_url,
            known_callers=args.known_callers,
            seed=args.seed,
        )
        progress = console if not args.no_progress else None
        result = _event_loop_run(_drive(options_run, plan, config, progress, args.profile))
    console.print(report.table(result))
    if result["load_generator"]["saturated"]:
        console.print(
            "[yellow]the load generator's own loop lagged (p99 "
            f"{result['load_generator']['loop_lag_ms']['p99']:.0f} ms): caller-side figures"
            " include its delays[/]"
        )
    if args.json:
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        console.print(f"report: {args.json}")
    if args.plot:
        args.plot.write_text(page(result), encoding="utf-8")
        console.print(f"plot: {args.plot}")
    for failure in result["calls"]["failures"][:5]:
        console.print(f"[red]failed[/] {failure['call_sid']}: {failure['reason']}")
    return 1 if result["calls"]["failed"] else 0


def _event_loop_run(coroutine: Any) -> dict[str, Any]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


async def _scrape(base_url: str) -> promtext.Scrape | None:
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.get(base_url + "/metrics")
    except httpx.HTTPError:
        return None
    return promtext.parse(response.text) if response.status_code == 200 else None


async def _drive(
    options: RunOptions,
    plan: scenario.Scenario,
    config: dict[str, Any],
    console: Console | None,
    profile: Path | None,
) -> dict[str, Any]:
    before = await _scrape(options.base_url)
    load = LoadRun(options, plan)
    profiler = None
    if profile is not None and options.server_pid is not None:
        profiler = await asyncio.create_subprocess_exec(
            _py_spy() or "py-spy",
            "record",
            "--pid",
            str(options.server_pid),
            "--output",
            str(profile),
            "--format",
            {".txt": "raw", ".json": "speedscope"}.get(profile.suffix, "flamegraph"),
            "--rate",
            "200",
            "--nonblocking",
            "--subprocesses",
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    running = asyncio.create_task(load.run())
    if console is not None:
        with Live(_progress(load), console=console, auto_refresh=False) as live:
            while not running.done():
                await asyncio.wait([running], timeout=_PROGRESS_S)
                live.update(_progress(load), refresh=True)
    state = await running
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        await profiler.wait()
    after = await _scrape(options.base_url)
    return report.build(options, plan, state, before, after, config)


def _progress(load: LoadRun) -> Table:
    state = load.state
    table = Table(show_header=True, box=None)
    for column in (
        "s",
        "active",
        "done",
        "failed",
        "turn p50",
        "turn p99",
        "greeting p99",
        "server CPU %",
        "server MB",
    ):
        table.add_column(column, justify="right")
    turns = sorted(t.reply_ms for c in state.calls for t in c.turns if t.reply_ms is not None)
    greetings = sorted(c.greeting_ms for c in state.calls if c.greeting_ms is not None)
    last = state.samples[-1] if state.samples else None

    def ms(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.0f}" if values else "–"

    table.add_row(
        f"{load.now_s():.0f}",
        str(state.active),
        str(state.done),
        f"[red]{state.failed}[/]" if state.failed else "0",
        ms(turns, 0.5),
        ms(turns, 0.99),
        ms(greetings, 0.99),
        "–" if last is None or last.server_cpu_pct is None else f"{last.server_cpu_pct:.0f}",
        "–" if last is None or last.server_rss_mb is None else f"{last.server_rss_mb:.0f}",
    )
    return table

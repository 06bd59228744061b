"""Run the OpenAI stand-in (and with --realtime the Realtime one) as its own process:
`python -m loadtest.standins.serve`.

The load generator starts it beside the server under test, so the stand-in's work does
not share an event loop with the callers it measures. Prints `READY <base_url>` on
stdout once it is listening (`READY <base_url> <realtime ws url>` with --realtime), then
serves until terminated.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from loadtest.fixtures import load_script
from loadtest.standins.fixture_transcriber import FixtureTranscriber
from loadtest.standins.openai_server import Latency, StandinOpenAI
from loadtest.standins.realtime_server import RealtimeLatency, StandinRealtime


async def _serve(
    latency: Latency, api_key: str, realtime: RealtimeLatency | None, fault_rate: float = 0.0
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    transcriber = FixtureTranscriber(load_script())
    # Nothing reads the recorded requests here; keep none, so memory stays flat.
    async with contextlib.AsyncExitStack() as stack:
        api = await stack.enter_async_context(
            StandinOpenAI(
                latency,
                transcriber=transcriber,
                api_key=api_key,
                max_recorded=0,
                fault_rate=fault_rate,
            )
        )
        ready = f"READY {api.base_url}"
        if realtime is not None:
            rt = await stack.enter_async_context(
                StandinRealtime(
                    realtime, transcriber=transcriber.samples, api_key=api_key, max_recorded=0
                )
            )
            ready += f" {rt.url}"
        sys.stdout.write(ready + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.standins.serve")
    typical = Latency()
    parser.add_argument("--stt-ms", type=float, default=typical.stt_ms)
    parser.add_argument("--llm-first-token-ms", type=float, default=typical.llm_first_token_ms)
    parser.add_argument("--llm-token-ms", type=float, default=typical.llm_token_ms)
    parser.add_argument("--tts-first-byte-ms", type=float, default=typical.tts_first_byte_ms)
    parser.add_argument("--tts-realtime-factor", type=float, default=typical.tts_realtime_factor)
    parser.add_argument("--api-key", default="sk-standin")
    parser.add_argument("--realtime", action="store_true", help="serve the Realtime stand-in too")
    parser.add_argument("--realtime-response-ms", type=float, default=RealtimeLatency.response_ms)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests faulted")
    args = parser.parse_args(argv)
    latency = Latency(
        args.stt_ms,
        args.llm_first_token_ms,
        args.llm_token_ms,
        args.tts_first_byte_ms,
        args.tts_realtime_factor,
    )
    realtime = RealtimeLatency(response_ms=args.realtime_response_ms) if args.realtime else None
    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop

            uvloop.run(_serve(latency, args.api_key, realtime, args.fault_rate))
        except ImportError:
            asyncio.run(_serve(latency, args.api_key, realtime, args.fault_rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

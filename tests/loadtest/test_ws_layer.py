"""The websocket-layer harness measures something for each server shape (figures stay out)."""

from __future__ import annotations

import math

import pytest

from loadtest.ws_layer import measure


@pytest.mark.parametrize(
    ("ws", "shape"),
    [("websockets-sansio", "starlette"), ("websockets-sansio", "asgi"), ("direct", "asgi")],
)
def test_reports_server_cpu_per_frame(ws: str, shape: str) -> None:
    micros = measure(ws, shape, connections=20, messages=50, cpu=None)
    assert math.isfinite(micros) and micros > 0

from __future__ import annotations

import os
import threading

from voice_agent.providers.pool import inference_pool, shutdown_inference_pool


def test_pool_is_shared_and_sized_to_the_cores() -> None:
    shutdown_inference_pool()
    pool = inference_pool()

    assert inference_pool() is pool
    assert inference_pool(workers=7) is pool  # first caller sized it
    assert pool._max_workers == (os.cpu_count() or 1)


def test_shutdown_gives_a_fresh_pool_next_time() -> None:
    old = inference_pool()
    shutdown_inference_pool()
    new = inference_pool(workers=1)
    try:
        assert new is not old
        assert new._max_workers == 1
        name = new.submit(lambda: threading.current_thread().name).result(timeout=5)
        assert name.startswith("inference")
    finally:
        shutdown_inference_pool()

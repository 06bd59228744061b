"""The worker threads that run local model inference (Whisper, Piper) off the event loop.

Threads are enough: ctranslate2 and onnxruntime release the GIL while they compute.
One pool per process, sized to the cores, so concurrent calls queue for CPU instead of
oversubscribing it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def inference_pool(workers: int | None = None) -> ThreadPoolExecutor:
    """The process-wide inference pool, created on first use with `workers` threads
    (default: one per core). Later calls return the same pool whatever they ask for."""
    global _pool
    with _lock:
        if _pool is None:
            size = workers if workers is not None else (os.cpu_count() or 1)
            _pool = ThreadPoolExecutor(max_workers=max(1, size), thread_name_prefix="inference")
        return _pool


def shutdown_inference_pool() -> None:
    """Stop the pool (at application shutdown); the next `inference_pool()` makes a new one."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)

"""Batched sampling on all cores: split a large batch into fixed-size chunks and run them on a thread pool.

numpy releases the GIL inside matrix products and ufuncs, so threads run truly in parallel; the BLAS library's own
threads are limited to one per worker meanwhile (two levels of threads on two cores fight each other and were
measured slower than one). Chunks are fixed by the batch size alone and each gets its own random generator spawned
from the caller's, so the result is the same whatever the number of cores.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import numpy as np

T = TypeVar("T")
CHUNK = 2048  # rows; measured best of 512..5000 for the shipped names model (bench/names.py)


def chunk_sizes(n: int, chunk: int = CHUNK) -> list[int]:
    return [min(chunk, n - start) for start in range(0, n, chunk)]


def map_chunks(fn: Callable[[int, np.random.Generator], list[T]], n: int, rng: np.random.Generator,
               chunk: int = CHUNK, workers: int | None = None) -> list[T]:
    """fn(size, rng) for each chunk of `n` rows, in parallel; results concatenated in chunk order."""
    sizes = chunk_sizes(n, chunk)
    if len(sizes) <= 1:
        return fn(n, rng)
    rngs = rng.spawn(len(sizes))
    workers = min(len(sizes), workers or os.cpu_count() or 1)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(fn, sizes, rngs))
    return [item for part in parts for item in part]

"""Metre on the step grid: bar length in steps and each step's place in its bar.

A piece's metre is a list of changes `(step, numerator, denominator)`, the first at step 0; a piece with one time
signature has one change. Units: steps are grid steps of 1/steps_per_quarter quarter note.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from app.errors import DataError

Change = tuple[int, int, int]  # (step, numerator, denominator)


def steps_per_bar(spq: int, time_signature: Sequence[int]) -> int:
    """Bar length in grid steps, e.g. 4/4 at 4 steps per quarter -> 16, 6/8 -> 12, 3/4 -> 12 (at least 1)."""
    num, den = int(time_signature[0]), int(time_signature[1])
    if num < 1 or den < 1:
        raise DataError(f"time signature {num}/{den} is not valid; expected e.g. 4/4, 3/4 or 6/8")
    return max(1, round(spq * 4 * num / den))


def bar_grid(length: int, spq: int, changes: Sequence[Change]) -> tuple[np.ndarray, np.ndarray]:
    """For each of `length` steps: (bar length in steps, position in the bar 0..bar-1), both int32 (length,).

    A change takes effect at its step and starts a new bar there (as a notated metre change does)."""
    if not changes:
        raise DataError("a metre needs at least one time signature")
    bar = np.empty(length, np.int32)
    pos = np.empty(length, np.int32)
    ordered = sorted((int(s), int(n), int(d)) for s, n, d in changes)
    if ordered[0][0] != 0:
        ordered.insert(0, (0, ordered[0][1], ordered[0][2]))
    for k, (start, num, den) in enumerate(ordered):
        end = ordered[k + 1][0] if k + 1 < len(ordered) else length
        start, end = min(start, length), min(end, length)
        if end <= start:
            continue
        b = steps_per_bar(spq, (num, den))
        bar[start:end] = b
        pos[start:end] = np.arange(end - start) % b
    return bar, pos

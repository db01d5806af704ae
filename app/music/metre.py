"""Metre on the step grid: bar length in steps and each step's place in its bar.

A piece's metre is a list of changes `(step, numerator, denominator)`; each change starts a bar at its step. A piece
with one time signature has one change at step 0. The first change may sit at a step < 0: the bar it starts began
before step 0, so step 0 is at position -step (mod the bar) -- a pickup, or an excerpt cut from inside a piece
(`shift_metre`). Units: steps are grid steps of 1/steps_per_quarter quarter note.
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


def _ordered(changes: Sequence[Change]) -> list[Change]:
    if not changes:
        raise DataError("a metre needs at least one time signature")
    ordered = sorted((int(s), int(n), int(d)) for s, n, d in changes)
    if ordered[0][0] > 0:
        ordered.insert(0, (0, ordered[0][1], ordered[0][2]))
    return ordered


def bar_grid(length: int, spq: int, changes: Sequence[Change]) -> tuple[np.ndarray, np.ndarray]:
    """For each of `length` steps: (bar length in steps, position in the bar 0..bar-1), both int32 (length,).

    A change takes effect at its step and starts a new bar there (as a notated metre change does); a first change
    at a step < 0 started its bar before step 0 (see the module docstring). A first change after step 0 also
    holds from step 0."""
    bar = np.empty(length, np.int32)
    pos = np.empty(length, np.int32)
    ordered = _ordered(changes)
    for k, (start, num, den) in enumerate(ordered):
        end = ordered[k + 1][0] if k + 1 < len(ordered) else length
        lo, end = min(max(start, 0), length), min(end, length)
        if end <= lo:
            continue
        b = steps_per_bar(spq, (num, den))
        bar[lo:end] = b
        pos[lo:end] = (np.arange(lo, end) - start) % b
    return bar, pos


def shift_metre(changes: Sequence[Change], start: int, spq: int, length: int | None = None) -> list[Change]:
    """The metre of the excerpt that begins at step `start` of a piece (and lasts `length` steps, if given): the
    change in force at `start` is kept at a step <= 0 that gives the same bar position (in -(bar-1)..0), later
    changes move back by `start`, changes at or after the excerpt's end are dropped. bar_grid of the result equals
    bar_grid of the whole piece cut at start."""
    ordered = _ordered(changes)
    out: list[Change] = []
    for s, num, den in ordered:
        if s <= start:
            b = steps_per_bar(spq, (num, den))
            out = [(-((start - s) % b), num, den)]
        elif length is None or s - start < length:
            out.append((s - start, num, den))
    return out


def metre_label(num: int, den: int) -> str:
    """"6/8" for (6, 8): how metres are named in reports."""
    return f"{int(num)}/{int(den)}"

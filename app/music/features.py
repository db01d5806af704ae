"""Per-piece melody features (after Yang & Lerch 2018, "On the evaluation of generative models in music") and
distances between two sets of pieces. Pure numpy.

A piece is an event array on the melody grid (`app.music.melody`: HOLD = -2, OFF = -1, p >= 0 = a note of MIDI
pitch p starts) with its grid (`steps_per_quarter`) and bar length in steps (`steps_per_bar`). A note lasts from its
onset to the next note-on or OFF, or to the end of the piece (`Melody.notes`). Token ids become events with
`events_from_ids(ids, codec)`.

Scalar features (one number per piece; NaN when undefined, e.g. no interval in a one-note piece):
    pitch_count     distinct MIDI pitches used (pitches)
    pitch_range     highest minus lowest pitch (semitones)
    avg_interval    mean absolute interval between consecutive notes (semitones)
    avg_ioi         mean inter-onset interval between consecutive notes (quarter notes)
    note_density    notes per quarter note, from the first onset to the end of the piece (notes / quarter note)
    in_scale_rate   share of notes (count, not duration) whose pitch class is in the scale of the piece's estimated
                    key (`estimate_key`: Krumhansl-Schmuckler, major or natural minor) (0..1)
    repetition      share of the 4-bar windows starting on a bar line (stride one bar) that repeat, event for event,
                    an earlier window of the same piece; NaN for a piece shorter than 5 bars (0..1)
Form features (one number per piece, not part of FEATURES; `bar_lookback`):
    bar_repeat_L    for L = 1, 2, 4, 8: share of the bars holding a note-on that equal, event for event, the bar L
                    bars earlier; NaN when no such bar has a bar L bars earlier (0..1)
Bars: a piece's bar lines come from its metre (`bar_lines`): one bar length in steps, or the piece's metre changes
[(step, numerator, denominator), ...] (app.music.metre), so a 6/8 or 3/4 tune is cut into its own 12-step bars and a
tune that changes metre into bars of both lengths. A trailing bar shorter than its metre's bar is left out.
`bar_self_similarity` gives the bars x bars matrix of equal bars (the report's self-similarity picture).
Histogram features (one normalised vector per piece; all zeros when the piece has nothing to count):
    pitch_class_hist    notes per pitch class C..B (12 bins, count-weighted)
    interval_hist       signed intervals between consecutive notes, -12..+12 semitones (25 bins; larger leaps are
                        counted in the end bins)
    note_length_hist    note lengths 1..4*steps_per_quarter steps (bin k-1 = k steps), last bin = longer (steps)

Set distances (`set_distance`): a scalar feature compares Gaussian kernel density estimates of the two sets (one
shared Scott's-rule bandwidth, see `kde_overlap`) and reports 1 - overlap area (0 = same distribution, 1 = disjoint);
a histogram feature compares the mean per-piece histograms of the two sets by Jensen-Shannon divergence in bits
(0 = identical, 1 = disjoint).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from app.core.metrics import js_divergence

from app.music import metre
from app.music.melody import Melody, estimate_key

SCALAR_FEATURES = ("pitch_count", "pitch_range", "avg_interval", "avg_ioi", "note_density", "in_scale_rate",
                   "repetition")
HIST_FEATURES = ("pitch_class_hist", "interval_hist", "note_length_hist")
FEATURES = SCALAR_FEATURES + HIST_FEATURES
UNITS = {"pitch_count": "pitches", "pitch_range": "semitones", "avg_interval": "semitones",
         "avg_ioi": "quarter notes", "note_density": "notes per quarter note", "in_scale_rate": "share of notes",
         "repetition": "share of 4-bar windows", "pitch_class_hist": "pitch class C..B",
         "interval_hist": "semitones -12..+12", "note_length_hist": "steps"}
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
MAX_INTERVAL = 12
PHRASE_BARS = 4
FORM_LAGS = (1, 2, 4, 8)
FORM_FEATURES = tuple(f"bar_repeat_{lag}" for lag in FORM_LAGS)
UNITS.update({f: "share of bars" for f in FORM_FEATURES})


# --- pieces --------------------------------------------------------------------------------------------------------
def events_from_ids(ids: Sequence[int] | np.ndarray, codec) -> np.ndarray:
    """Token ids of `codec` (an app.music.codec.MelodyCodec) -> int64 events (HOLD, OFF or MIDI pitch)."""
    return np.asarray(codec.decode(ids).events, dtype=np.int64)


def notes_of(events: Sequence[int] | np.ndarray) -> list[tuple[int, int, int]]:
    """(pitch, start_step, end_step) per note, as `Melody.notes`."""
    return Melody(events=tuple(int(e) for e in np.asarray(events).reshape(-1))).notes()


def steps_per_bar(steps_per_quarter: int, time_signature: Sequence[int]) -> int:
    """Grid steps in one bar of `time_signature` (numerator, denominator), at least 1 (app.music.metre)."""
    return metre.steps_per_bar(steps_per_quarter, time_signature)


def bar_lines(length: int, steps_per_quarter: int, bars) -> np.ndarray:
    """Bar lines of the complete bars of a piece of `length` steps: int64 (m + 1,), 0 = b_0 < b_1 < ... < b_m,
    bar k spans steps [b_k, b_{k+1}). `bars` is one bar length in steps, or the piece's metre changes
    [(step, numerator, denominator), ...] (a change starts a new bar, see app.music.metre.bar_grid). A trailing bar
    shorter than its metre's bar is left out (m = 0 when not even one bar is complete)."""
    length = int(length)
    if isinstance(bars, (int, np.integer)):
        if bars < 1:
            raise ValueError(f"bar length must be >= 1 step, got {bars}")
        return np.arange(0, length // int(bars) * int(bars) + 1, int(bars), dtype=np.int64)
    bar, pos = metre.bar_grid(length, steps_per_quarter, [tuple(c) for c in bars])
    starts = np.flatnonzero(pos == 0).astype(np.int64)
    if not len(starts):
        return np.zeros(1, np.int64)
    last = int(starts[-1])
    if last + int(bar[last]) <= length:
        starts = np.r_[starts, last + int(bar[last])]
    return starts


def _lines(events: np.ndarray, bars) -> np.ndarray:
    """Bar lines of `events`: `bars` is a bar length in steps or bar lines already computed (`bar_lines`)."""
    if isinstance(bars, (int, np.integer)):
        return bar_lines(len(events), 1, bars)
    return np.asarray(bars, dtype=np.int64)


def bar_keys(events: Sequence[int] | np.ndarray, bars) -> tuple[list[bytes], np.ndarray]:
    """Each complete bar of `events` as bytes (equal bytes = equal bars, event for event), and a bool per bar:
    does it hold a note-on? `bars`: bar length in steps or bar lines (`bar_lines`)."""
    events = np.asarray(events, dtype=np.int64).reshape(-1)
    lines = _lines(events, bars)
    chunks = [events[a:b] for a, b in zip(lines[:-1], lines[1:])]
    return [c.tobytes() for c in chunks], np.array([(c >= 0).any() for c in chunks], dtype=bool)


def bar_self_similarity(events: Sequence[int] | np.ndarray, bars) -> np.ndarray:
    """Bars x bars bool matrix (m, m): [i, j] is True when bars i and j are equal event for event and hold a
    note-on (silent or held-over bars stay dark). Symmetric; the diagonal is lit for every bar with a note-on."""
    keys, has_note = bar_keys(events, bars)
    first: dict[bytes, int] = {}
    codes = np.array([first.setdefault(k, len(first)) for k in keys], dtype=np.int64)
    return (codes[:, None] == codes[None, :]) & has_note[:, None] & has_note[None, :]


def bar_lookback(events: Sequence[int] | np.ndarray, bars, lags: Sequence[int] = FORM_LAGS) -> np.ndarray:
    """For each lag L: share of the bars with a note-on (and a bar L bars earlier) equal to the bar L bars
    earlier, (len(lags),) float; NaN for a lag with no such bar. `bars`: bar length in steps or bar lines."""
    keys, has_note = bar_keys(events, bars)
    out = np.full(len(lags), np.nan)
    for i, lag in enumerate(lags):
        judged = [k for k in range(lag, len(keys)) if has_note[k]]
        if judged:
            out[i] = float(np.mean([keys[k] == keys[k - lag] for k in judged]))
    return out


# --- features ------------------------------------------------------------------------------------------------------
def in_scale_rate(notes: Sequence[tuple[int, int, int]]) -> float:
    """Share of notes in the scale of the estimated key (major or natural minor); NaN without notes."""
    if not notes:
        return float("nan")
    tonic, mode = estimate_key(notes)
    scale = {(tonic + i) % 12 for i in (MAJOR_SCALE if mode == "major" else MINOR_SCALE)}
    return float(np.mean([p % 12 in scale for p, _, _ in notes]))


def repetition(events: np.ndarray, steps_per_bar, bars: int = PHRASE_BARS) -> float:
    """Share of `bars`-bar windows on bar lines (stride one bar) equal to an earlier window of the piece; NaN when
    the piece has fewer than two such windows. `steps_per_bar`: bar length in steps, or bar lines (`bar_lines`)
    for a piece whose bars differ in length."""
    events = np.asarray(events)
    lines = _lines(events, steps_per_bar)
    seen, repeats, total = set(), 0, 0
    for k in range(len(lines) - bars):
        key = events[lines[k]:lines[k + bars]].tobytes()
        repeats += key in seen
        seen.add(key)
        total += 1
    return repeats / total if total >= 2 else float("nan")


def histogram(values: np.ndarray, bins: int) -> np.ndarray:
    """Counts of ints 0..bins-1 normalised to sum 1 (all zeros when there are none)."""
    counts = np.bincount(np.asarray(values, dtype=np.int64), minlength=bins)[:bins].astype(float)
    total = counts.sum()
    return counts / total if total else counts


def piece_features(events: Sequence[int] | np.ndarray, steps_per_quarter: int = 4, steps_per_bar=16) -> dict:
    """All features of one piece (see the module docstring): scalars as floats, histograms as float arrays.
    `steps_per_bar`: the bar length in steps, or the piece's metre changes [(step, num, den), ...]."""
    events = np.asarray(events, dtype=np.int64).reshape(-1)
    lines = bar_lines(len(events), steps_per_quarter, steps_per_bar)
    notes = notes_of(events)
    pitches = np.array([p for p, _, _ in notes], dtype=np.int64)
    onsets = np.array([s for _, s, _ in notes], dtype=np.int64)
    lengths = np.array([e - s for _, s, e in notes], dtype=np.int64)
    intervals = np.diff(pitches)
    nan = float("nan")
    max_len = 4 * steps_per_quarter
    span = (len(events) - onsets[0]) / steps_per_quarter if len(notes) else 0.0
    return {
        "notes": len(notes),
        "steps": len(events),
        "pitch_count": float(len(np.unique(pitches))) if len(notes) else nan,
        "pitch_range": float(pitches.max() - pitches.min()) if len(notes) else nan,
        "avg_interval": float(np.abs(intervals).mean()) if len(intervals) else nan,
        "avg_ioi": float(np.diff(onsets).mean() / steps_per_quarter) if len(onsets) > 1 else nan,
        "note_density": float(len(notes) / span) if span > 0 else nan,
        "in_scale_rate": in_scale_rate(notes),
        "repetition": repetition(events, lines),
        **dict(zip(FORM_FEATURES, bar_lookback(events, lines).tolist())),
        "pitch_class_hist": histogram(pitches % 12, 12),
        "interval_hist": histogram(np.clip(intervals, -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL,
                                   2 * MAX_INTERVAL + 1),
        "note_length_hist": histogram(np.minimum(lengths, max_len + 1) - 1, max_len + 1),
    }


def set_features(pieces: Sequence[np.ndarray], steps_per_quarter: int, bar_steps) -> dict:
    """Features of many pieces: {scalar or form name: (n,) float array, histogram name: (n, bins) array}.
    `bar_steps`: one bar length in steps for all pieces, or one per piece (a bar length or the piece's metre
    changes)."""
    bar_steps = [bar_steps] * len(pieces) if isinstance(bar_steps, (int, np.integer)) else list(bar_steps)
    rows = [piece_features(p, steps_per_quarter, b) for p, b in zip(pieces, bar_steps)]
    out = {name: np.array([r[name] for r in rows], dtype=float)
           for name in SCALAR_FEATURES + FORM_FEATURES + ("notes", "steps")}
    for name in HIST_FEATURES:
        out[name] = np.stack([r[name] for r in rows]) if rows else np.zeros((0, 0))
    return out


# --- distances -----------------------------------------------------------------------------------------------------
def kde(values: np.ndarray, grid: np.ndarray, bandwidth: float) -> np.ndarray:
    """Gaussian kernel density estimate of `values` on `grid` (integrates to 1 over the real line)."""
    z = (grid[:, None] - np.asarray(values, float)[None, :]) / bandwidth
    return np.exp(-0.5 * z * z).sum(axis=1) / (len(values) * bandwidth * np.sqrt(2 * np.pi))


def kde_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap area (0..1) of the Gaussian KDEs of samples a and b (NaNs dropped).

    Both use one bandwidth, so equal samples are smoothed equally: Scott's rule (sigma * n^(-1/5)) with sigma the
    pooled within-sample standard deviation and n the mean sample size, at least 2 % of the standard deviation of
    all values together (so samples that are each constant stay narrow bumps and a point mass -- e.g. many pieces
    with no repetition -- compares fairly with a spread sample). Two samples of one identical constant overlap
    fully (1.0)."""
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b):
        return float("nan")
    pooled = np.concatenate([a, b])
    sigma = pooled.std()
    if sigma == 0:
        return 1.0
    within = np.sqrt((a.var() * len(a) + b.var() * len(b)) / len(pooled))
    bw = max(within * (len(pooled) / 2) ** (-0.2), 0.02 * sigma)
    lo, hi = pooled.min() - 4 * bw, pooled.max() + 4 * bw
    grid = np.linspace(lo, hi, int(np.clip(np.ceil(4 * (hi - lo) / bw), 512, 20000)))
    overlap = np.minimum(kde(a, grid, bw), kde(b, grid, bw))
    return float(min(1.0, np.trapezoid(overlap, grid)))


def mean_hist(h: np.ndarray) -> np.ndarray:
    """Mean of the per-piece histograms that have any mass (every piece counts the same)."""
    h = np.asarray(h, float)
    keep = h.sum(axis=1) > 0 if h.ndim == 2 and len(h) else np.zeros(0, bool)
    return h[keep].mean(axis=0) if keep.any() else np.zeros(h.shape[-1] if h.ndim == 2 else 0)


def set_distance(name: str, a, b) -> float:
    """Distance between two sets' values of feature `name`: 1 - KDE overlap (scalars), JS bits (histograms)."""
    if name in HIST_FEATURES:
        return js_divergence(mean_hist(a), mean_hist(b))
    overlap = kde_overlap(a, b)
    return 1.0 - overlap if np.isfinite(overlap) else float("nan")

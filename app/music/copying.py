"""How much generated melodies copy the training pieces: pitch n-grams, 4-bar phrases, longest copied run.

Pieces are event arrays on the melody grid (`app.music.melody`: HOLD = -2, OFF = -1, p >= 0 = note-on of MIDI pitch p),
so a model and a corpus with different vocabularies compare correctly. Matching is exact (same pitches, no
transposition); a corpus's augmented (transposed) training copies are training pieces like any other.

    n-gram copy rate    share of a melody's pitch n-grams (n consecutive notes, pitches only, every start) that occur
                        in some training piece (default n = 8)
    phrase copy rate    share of a melody's 4-bar phrases (event for event, rhythm included; windows starting on a
                        bar line, stride one bar, with at least one note-on) that occur at any step of a training piece
    longest copied run  the most consecutive notes (pitches) of a melody found, consecutive, in one training piece

Method: n-grams of up to 9 notes are packed exactly into a uint64 (7 bits per pitch); longer windows get a 64-bit
polynomial hash. Matches never cross a piece boundary. The longest run grows a window length L = 1, 2, ... and keeps
only the generated and training windows that still match, so the work shrinks quickly with L; the overall longest run
is checked note for note against the training piece it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from app.music.features import PHRASE_BARS, bar_lines

HASH_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit multiplier; arithmetic wraps mod 2^64
MAX_EXACT_N = 9  # 9 pitches x 7 bits fit in 63 bits


def pitches_of(events: np.ndarray) -> np.ndarray:
    """Pitches of the note-ons of an event array, in order (int64)."""
    events = np.asarray(events, dtype=np.int64).reshape(-1)
    return events[events >= 0]


def ngram_keys(pitches: np.ndarray, n: int) -> np.ndarray:
    """Exact uint64 keys of every pitch n-gram of one sequence (n <= 9, pitches 0..127); empty if shorter than n."""
    if not 1 <= n <= MAX_EXACT_N:
        raise ValueError(f"n must be 1..{MAX_EXACT_N}, got {n}")
    p = np.asarray(pitches, dtype=np.uint64)
    if len(p) < n:
        return np.zeros(0, np.uint64)
    w = sliding_window_view(p, n)
    shifts = (np.uint64(7) * np.arange(n, dtype=np.uint64))
    return np.bitwise_or.reduce(w << shifts, axis=1)


def window_hashes(values: np.ndarray, width: int) -> np.ndarray:
    """64-bit polynomial hashes of every window of `width` consecutive values of one sequence (empty if shorter)."""
    v = np.asarray(values, dtype=np.int64).astype(np.uint64)  # negative events wrap: still distinct values
    n = len(v) - width + 1
    if n <= 0 or width < 1:
        return np.zeros(0, np.uint64)
    h = np.zeros(n, np.uint64)
    for j in range(width):
        h = h * HASH_BASE + v[j:j + n] + np.uint64(1)
    return h


def _has(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Bool per key: is it in `sorted_keys` (a sorted unique array)?"""
    if not len(sorted_keys) or not len(keys):
        return np.zeros(len(keys), bool)
    i = np.searchsorted(sorted_keys, keys).clip(0, len(sorted_keys) - 1)
    return sorted_keys[i] == keys


@dataclass(frozen=True)
class CopyResult:
    """Per generated melody: found/total n-grams and phrases, longest copied run (notes) and its source."""

    ngram_found: np.ndarray
    ngram_total: np.ndarray
    phrase_found: np.ndarray
    phrase_total: np.ndarray
    longest_run: np.ndarray
    longest_source: str | None  # training piece holding the overall longest run
    n: int

    @property
    def ngram_rate(self) -> float:
        t = int(self.ngram_total.sum())
        return float(self.ngram_found.sum() / t) if t else float("nan")

    @property
    def phrase_rate(self) -> float:
        t = int(self.phrase_total.sum())
        return float(self.phrase_found.sum() / t) if t else float("nan")

    def summary(self) -> dict:
        lr = self.longest_run
        safe = lambda x: x if np.isfinite(x) else None  # noqa: E731  (JSON has no NaN)
        return {"ngram_n": self.n, "ngram_copy_rate": safe(self.ngram_rate), "ngrams": int(self.ngram_total.sum()),
                "phrase_copy_rate": safe(self.phrase_rate), "phrases": int(self.phrase_total.sum()),
                "melodies_with_a_copied_phrase": int((self.phrase_found > 0).sum()),
                "longest_run_notes_max": int(lr.max()) if len(lr) else 0,
                "longest_run_notes_median": float(np.median(lr)) if len(lr) else 0.0,
                "longest_run_source": self.longest_source}


class TrainingIndex:
    """The training pieces (event arrays and names), indexed on demand for copy checks."""

    def __init__(self, pieces: Sequence[np.ndarray], names: Sequence[str] | None = None):
        self.events = [np.asarray(p, dtype=np.int64).reshape(-1) for p in pieces]
        self.names = list(names) if names is not None else [f"piece {i}" for i in range(len(self.events))]
        self.pitches = [pitches_of(e) for e in self.events]
        lens = np.array([len(p) for p in self.pitches], dtype=np.int64)
        self._flat = np.concatenate(self.pitches) if self.pitches else np.zeros(0, np.int64)
        self._starts = np.concatenate([[0], np.cumsum(lens)])[:-1] if len(lens) else np.zeros(0, np.int64)
        self._piece = np.repeat(np.arange(len(lens)), lens)
        self._end = np.repeat(self._starts + lens, lens)  # end (exclusive) of the piece holding each note
        self._ngrams: dict[int, np.ndarray] = {}
        self._phrases: dict[int, np.ndarray] = {}

    def ngram_set(self, n: int) -> np.ndarray:
        if n not in self._ngrams:
            keys = [ngram_keys(p, n) for p in self.pitches]
            self._ngrams[n] = np.unique(np.concatenate(keys)) if keys else np.zeros(0, np.uint64)
        return self._ngrams[n]

    def phrase_set(self, width: int) -> np.ndarray:
        if width not in self._phrases:
            hs = [window_hashes(e, width) for e in self.events]
            self._phrases[width] = np.unique(np.concatenate(hs)) if hs else np.zeros(0, np.uint64)
        return self._phrases[width]

    def ngram_matches(self, pitches: np.ndarray, n: int = 8) -> tuple[int, int]:
        """(n-grams of this pitch sequence found in training, n-grams in it)."""
        keys = ngram_keys(pitches, n)
        return int(_has(self.ngram_set(n), keys).sum()), len(keys)

    def phrase_matches(self, events: np.ndarray, bar_steps, bars: int = PHRASE_BARS) -> tuple[int, int]:
        """(bar-aligned `bars`-bar phrases of this melody found in training, phrases with a note-on in it).
        `bar_steps`: the bar length in steps, or the melody's bar lines (app.music.features.bar_lines) when its
        bars differ in length (metre changes); a phrase then spans `bars` consecutive bars, whatever their length."""
        events = np.asarray(events, dtype=np.int64)
        lines = (bar_lines(len(events), 1, bar_steps) if isinstance(bar_steps, (int, np.integer))
                 else np.asarray(bar_steps, dtype=np.int64))
        starts, ends = lines[:-bars], lines[bars:]
        found = total = 0
        for width in np.unique(ends - starts):
            s = starts[ends - starts == width]
            has_note = np.array([(events[a:a + width] >= 0).any() for a in s])
            hashes = window_hashes(events, int(width))[s][has_note]
            found += int(_has(self.phrase_set(int(width)), hashes).sum())
            total += int(has_note.sum())
        return found, total

    def longest_runs(self, pitch_seqs: Sequence[np.ndarray]) -> tuple[np.ndarray, str | None]:
        """Longest run of consecutive notes of each sequence found consecutively in one training piece (0 when not
        even one pitch occurs), and the name of a training piece holding the overall longest run."""
        lens = np.array([len(p) for p in pitch_seqs], dtype=np.int64)
        best = np.zeros(len(lens), np.int64)
        if not len(lens) or not lens.sum() or not len(self._flat):
            return best, None
        g = np.concatenate([np.asarray(p, np.int64) for p in pitch_seqs])
        g_mel = np.repeat(np.arange(len(lens)), lens)
        g_end = np.repeat(np.concatenate([[0], np.cumsum(lens)])[1:], lens)
        g_pos = np.arange(len(g))
        t_pos = np.arange(len(self._flat))
        g_h = g.astype(np.uint64) + np.uint64(1)
        t_h = self._flat.astype(np.uint64) + np.uint64(1)
        length, last = 0, None
        while len(g_pos) and len(t_pos):
            t_sorted = np.unique(t_h)
            keep_g = _has(t_sorted, g_h)
            g_pos, g_h = g_pos[keep_g], g_h[keep_g]
            if not len(g_pos):
                break
            keep_t = _has(np.unique(g_h), t_h)
            t_pos, t_h = t_pos[keep_t], t_h[keep_t]
            length += 1
            np.maximum.at(best, g_mel[g_pos], length)
            last = (g_pos[0], g_h[0], t_pos, t_h, length)
            # extend every surviving window by its next note, dropping those that reach their piece's end
            ok_g = g_pos + length < g_end[g_pos]
            g_pos, g_h = g_pos[ok_g], g_h[ok_g] * HASH_BASE + g[g_pos[ok_g] + length].astype(np.uint64) + np.uint64(1)
            ok_t = t_pos + length < self._end[t_pos]
            t_pos = t_pos[ok_t]
            t_h = t_h[ok_t] * HASH_BASE + self._flat[t_pos + length].astype(np.uint64) + np.uint64(1)
        source = None
        if last is not None:
            gp, gh, tps, ths, n = last
            for tp in tps[ths == gh]:
                if np.array_equal(self._flat[tp:tp + n], g[gp:gp + n]):  # rule out a hash collision
                    source = self.names[int(self._piece[tp])]
                    break
        return best, source

    def check(self, melodies: Sequence[np.ndarray], bar_steps, n: int = 8) -> CopyResult:
        """Copy figures of each melody (event arrays), phrases cut with bars of `bar_steps` steps (one number for
        all melodies, or one per melody: a bar length or the melody's bar lines)."""
        bars = [bar_steps] * len(melodies) if isinstance(bar_steps, (int, np.integer)) else list(bar_steps)
        pitch_seqs = [pitches_of(m) for m in melodies]
        ng = np.array([self.ngram_matches(p, n) for p in pitch_seqs], dtype=np.int64).reshape(-1, 2)
        ph = np.array([self.phrase_matches(m, b) for m, b in zip(melodies, bars)], dtype=np.int64).reshape(-1, 2)
        runs, source = self.longest_runs(pitch_seqs)
        return CopyResult(ngram_found=ng[:, 0], ngram_total=ng[:, 1], phrase_found=ph[:, 0], phrase_total=ph[:, 1],
                          longest_run=runs, longest_source=source, n=n)

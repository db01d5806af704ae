"""Polyphonic token codec (issue 14): Magenta Polyphony-RNN-style step events, with an exact inverse on the grid.

Token ids (a `Vocabulary` of kind "poly"), for pitches min_pitch..max_pitch (P of them):
    0              "step"  the grid step ends (time advances by one step; an empty step is this token alone)
    1 + k          "+p"    a note of pitch p = min_pitch + k starts at this step
    1 + P + k      "=p"    the note of pitch p that sounded in the previous step goes on through this step
A piece is its grid steps in order, each step being the notes that sound in it, highest pitch first, then "step".
A piece of T steps holding notes of total duration D steps is T + D tokens.

Equal on the grid: a set of notes (pitch, start, end) in steps is represented by its piano roll, two bool arrays
(pitch, step): `onset` (a note starts) and `sounding` (a note covers the step). Notes of one pitch that overlap
are one key, as on a keyboard: a re-strike while the pitch sounds starts a new note that lasts as long as either
one would. `canonical(notes)` gives the notes of the roll (maximal sounding runs cut at each onset);
`decode(encode(notes)) == canonical(notes)` for every note list in range, and `encode(decode(ids)) == ids` for
every id list `encode` can produce. Velocity is not kept (written back at one velocity); instruments are merged.

Decoding any id list (e.g. one sampled from a model) is total: a "=p" whose pitch did not sound in the previous
step is ignored, a pitch named twice in one step counts once, and tokens after the last "step" form a last step.

Why this encoding (measured with bench/poly.py on the 17 music21 keyboard/quartet works of bench/poly_folder.py
and on music21's Bach chorales; figures and the command in BENCHMARKS.md, section "Polyphony"): the performance
encoding (note-on / note-off / time-shift) and a REMI-like one (bar, position, pitch, duration) need fewer tokens
per piece: on the 414 chorale segments 1,294 tokens per piece here (4.53 per note, vocabulary 127 for pitches
28..90) against 673 (2.36 per note, vocabulary 142) and 689 (2.41, vocabulary 144); on the 17 keyboard/quartet
works 5,902 against 4,230 and 4,286. Ours and the performance encoding round-trip every piece exactly; REMI with
durations up to 64 steps fails 7 of the 17 keyboard works (longer notes), 0 of the chorales. We keep the
step events because (1) every grid step is an explicit token, so generation is asked for in steps or bars and
stops exactly there, and bars, metre and the primer line up as in melody mode; (2) the notes sounding at each
step are spelled out, so the model sees (and the sampler can enforce, see app/music/polygen.py) the polyphony of
every step, with no note left hanging by a missing note-off; (3) every note token names a pitch, so key and range
constraints mask tokens exactly as in melody mode; (4) its vocabulary, 1 + 2P, is the smallest of the three for
the time resolution we use (REMI needs one duration token per length, performance one shift token per gap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from app.core.vocab import Vocabulary
from app.errors import DataError

STEP_ID = 0
KIND = "poly"
Note = tuple[int, int, int]  # (MIDI pitch, start step, end step), end exclusive


def piano_roll(notes: Iterable[Note], steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(onset, sounding): bool arrays (128, steps) of a note list (steps: default the last note's end)."""
    notes = list(notes)
    steps = max((e for _, _, e in notes), default=0) if steps is None else steps
    onset = np.zeros((128, steps), bool)
    sounding = np.zeros((128, steps), bool)
    for p, s, e in notes:
        if e <= s:
            raise DataError(f"note {p} has end {e} <= start {s}")
        sounding[p, s:e] = True
        onset[p, s] = True
    return onset, sounding


def roll_notes(onset: np.ndarray, sounding: np.ndarray) -> list[Note]:
    """The notes of a piano roll: each maximal run of `sounding`, cut at every onset; sorted by (start, -pitch)."""
    out: list[Note] = []
    for p in np.flatnonzero(sounding.any(axis=1)):
        row, on = sounding[p], onset[p] & sounding[p]
        start = None
        for t in range(len(row)):
            if start is not None and (not row[t] or on[t]):
                out.append((int(p), start, t))
                start = None
            if row[t] and start is None:
                start = t
        if start is not None:
            out.append((int(p), start, len(row)))
    out.sort(key=lambda n: (n[1], -n[0], n[2]))
    return out


def canonical(notes: Iterable[Note]) -> list[Note]:
    """The notes as the grid holds them (module docstring): sorted by (start, -pitch); one pitch never overlaps."""
    notes = list(notes)
    by_pitch: dict[int, list[tuple[int, int]]] = {}
    for p, s, e in notes:
        if e <= s:
            raise DataError(f"note {p} has end {e} <= start {s}")
        by_pitch.setdefault(int(p), []).append((int(s), int(e)))
    out: list[Note] = []
    for p, spans in by_pitch.items():
        spans.sort()
        onsets = sorted({s for s, _ in spans})
        # covered steps as merged intervals, then cut at each onset
        merged: list[list[int]] = []
        for s, e in spans:
            if merged and s <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        k = 0
        for s, e in merged:
            cuts = []
            while k < len(onsets) and onsets[k] < e:
                if onsets[k] >= s:
                    cuts.append(onsets[k])
                k += 1
            bounds = cuts + [e]
            out.extend((p, a, b) for a, b in zip(bounds[:-1], bounds[1:]))
    out.sort(key=lambda n: (n[1], -n[0], n[2]))
    return out


@dataclass(frozen=True)
class PolyCodec:
    """Encodes note lists with pitches in min_pitch..max_pitch (MIDI, inclusive) to int32 ids and back."""

    min_pitch: int = 21
    max_pitch: int = 108
    vocab: Vocabulary = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise DataError(f"pitch range {self.min_pitch}..{self.max_pitch} is not inside 0..127")
        pitches = range(self.min_pitch, self.max_pitch + 1)
        tokens = ("step",) + tuple(f"+{p}" for p in pitches) + tuple(f"={p}" for p in pitches)
        object.__setattr__(self, "vocab", Vocabulary(tokens=tokens, n_special=1, kind=KIND))

    @property
    def n_pitches(self) -> int:
        return self.max_pitch - self.min_pitch + 1

    @property
    def size(self) -> int:
        return self.vocab.size

    @classmethod
    def from_vocab(cls, vocab: Vocabulary) -> "PolyCodec":
        """Rebuild the codec from a saved vocabulary (checks it is a poly vocabulary of this layout)."""
        if vocab.kind != KIND or vocab.size < 3 or vocab.size % 2 == 0 or vocab.tokens[0] != "step":
            raise DataError(f"not a polyphonic vocabulary (kind={vocab.kind!r}, {vocab.describe()}); expected "
                            f"kind 'poly' with tokens step, +pitch..., =pitch...")
        try:
            lo = int(vocab.tokens[1][1:])
        except ValueError:
            raise DataError(f"polyphonic vocabulary has a non-pitch token ({vocab.describe()})") from None
        codec = cls(lo, lo + (vocab.size - 1) // 2 - 1)
        if codec.vocab.tokens != vocab.tokens:
            raise DataError(f"polyphonic vocabulary is not step, +p.., =p.. over consecutive pitches "
                            f"({vocab.describe()})")
        return codec

    # token meaning -------------------------------------------------------------------------------------------
    def token_pitch(self) -> np.ndarray:
        """MIDI pitch of each id (vocab,), -1 for "step"."""
        k = np.arange(self.size) - 1
        return np.where(k < 0, -1, self.min_pitch + k % max(1, self.n_pitches)).astype(np.int64)

    def is_start(self) -> np.ndarray:
        """Bool (vocab,): the "+p" (note starts) tokens."""
        ids = np.arange(self.size)
        return (ids >= 1) & (ids <= self.n_pitches)

    def start_pitches(self) -> np.ndarray:
        """MIDI pitch of each "+p" token, -1 for the others: what key and range constraints mask."""
        return np.where(self.is_start(), self.token_pitch(), -1)

    # encode / decode ---------------------------------------------------------------------------------------------
    def encode(self, notes: Sequence[Note], steps: int | None = None) -> np.ndarray:
        """Notes (pitch, start, end) in steps -> int32 ids (steps + sounding note-steps,). steps: the piece's length
        (default: the last note's end; notes must end by then). A pitch outside the range raises DataError."""
        notes = list(notes)
        bad = [n for n in notes if not self.min_pitch <= n[0] <= self.max_pitch]
        if bad:
            raise DataError(f"pitch {bad[0][0]} at step {bad[0][1]} is outside the codec range "
                            f"{self.min_pitch}..{self.max_pitch}")
        end = max((e for _, _, e in notes), default=0)
        steps = end if steps is None else steps
        if end > steps or any(s < 0 for _, s, _ in notes):
            raise DataError(f"notes run from step {min(s for _, s, _ in notes)} to {end}, outside 0..{steps}")
        onset, sounding = piano_roll(notes, steps)
        lo, hi, P = self.min_pitch, self.max_pitch, self.n_pitches
        on, snd = onset[lo:hi + 1], sounding[lo:hi + 1]
        # per step: sounding pitches from high to low, each as +p (onset) or =p, then "step"
        counts = snd.sum(axis=0)
        out = np.empty(int(counts.sum()) + steps, np.int32)
        pos = 0
        for t in range(steps):
            ks = np.flatnonzero(snd[:, t])[::-1]
            n = len(ks)
            out[pos:pos + n] = np.where(on[ks, t], 1 + ks, 1 + P + ks)
            out[pos + n] = STEP_ID
            pos += n + 1
        return out

    def decode_notes(self, ids: Sequence[int] | np.ndarray) -> tuple[list[Note], int]:
        """ids -> (notes (pitch, start, end) sorted by (start, -pitch), number of steps). See the module docstring
        for ids that `encode` would not produce. An id outside 0..size-1 raises DataError."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise DataError(f"token id outside 0..{self.size - 1} (got min {ids.min()}, max {ids.max()}); "
                            f"the ids were made with another vocabulary")
        P, lo = self.n_pitches, self.min_pitch
        notes: list[Note] = []
        open_: dict[int, int] = {}  # pitch -> start step, notes sounding in the previous step
        cur: dict[int, int] = {}  # pitch -> start step, notes sounding in this step so far
        t = 0
        ends = list(ids) + ([STEP_ID] if ids.size and ids[-1] != STEP_ID else [])
        for i in ends:
            i = int(i)
            if i == STEP_ID:
                for p, s in open_.items():
                    if p not in cur or cur[p] != s:
                        notes.append((p, s, t))
                open_, cur = cur, {}
                t += 1
            elif i <= P:
                p = lo + i - 1
                cur.setdefault(p, t)
            else:
                p = lo + i - 1 - P
                if p in open_ and p not in cur:
                    cur[p] = open_[p]
        for p, s in open_.items():
            notes.append((p, s, t))
        notes.sort(key=lambda n: (n[1], -n[0], n[2]))
        return notes, t

    def transpose_ids(self, ids: np.ndarray, semitones: int) -> np.ndarray | None:
        """Ids of the same piece moved by `semitones`, or None if a note would leave the pitch range."""
        ids = np.asarray(ids, dtype=np.int32)
        if not semitones:
            return ids.copy()
        P = self.n_pitches
        notes = ids > 0
        k = (ids - 1) % P
        moved_k = k + semitones
        if notes.any() and (moved_k[notes].min() < 0 or moved_k[notes].max() >= P):
            return None
        return np.where(notes, ids + semitones, ids).astype(np.int32)

    def steps_of(self, ids: np.ndarray) -> int:
        """Grid steps of an id sequence (its "step" tokens; a last unfinished step counts)."""
        ids = np.asarray(ids)
        return int((ids == STEP_ID).sum()) + int(ids.size > 0 and ids[-1] != STEP_ID)


def family_line(notes: Sequence[Note]) -> np.ndarray:
    """The top line of a piece as melody-codec-like ids (pitch + 2 per onset of the highest sounding note), for
    the corpus's tune-family split (app.music.corpus.tune_families reads differences of ids >= 2)."""
    from app.music.melody import skyline

    return np.array([p + 2 for p, _, _ in skyline(sorted(notes, key=lambda n: (n[1], -n[0])))], np.int32)

"""Melody token codec: one token per grid step, an exact inverse, and X/Y training windows.

Token ids (Magenta's melody encoding, saved as a `Vocabulary` of kind "melody"):
    0 = "hold"  no event at this step (the note or the silence goes on)
    1 = "rest"  the sounding note ends here
    2 + (p - min_pitch) = str(p)  a note of MIDI pitch p starts here, for p in min_pitch..max_pitch

`encode` and `decode` are exact inverses on every melody whose pitches are in range and every id sequence whose
ids are < vocab size: decode(encode(m)).events == m.events and encode(decode(ids)) == ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.core.vocab import Vocabulary, one_hot
from app.errors import DataError
from app.music.melody import HOLD, OFF, Melody

HOLD_ID, REST_ID = 0, 1
SPECIALS = ("hold", "rest")


@dataclass(frozen=True)
class MelodyCodec:
    """Encodes melodies with pitches in min_pitch..max_pitch (MIDI numbers, inclusive) to int32 ids and back."""

    min_pitch: int = 48
    max_pitch: int = 96
    vocab: Vocabulary = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.min_pitch <= self.max_pitch <= 127:
            raise DataError(f"pitch range {self.min_pitch}..{self.max_pitch} is not inside 0..127")
        tokens = SPECIALS + tuple(str(p) for p in range(self.min_pitch, self.max_pitch + 1))
        object.__setattr__(self, "vocab", Vocabulary(tokens=tokens, n_special=len(SPECIALS), kind="melody"))

    @property
    def size(self) -> int:
        return self.vocab.size

    @classmethod
    def from_vocab(cls, vocab: Vocabulary) -> "MelodyCodec":
        """Rebuild the codec from a saved vocabulary (checks it is a melody vocabulary of this layout)."""
        if vocab.kind != "melody" or tuple(vocab.tokens[:2]) != SPECIALS or vocab.size < 3:
            raise DataError(f"not a melody vocabulary (kind={vocab.kind!r}, {vocab.describe()}); "
                            f"expected kind 'melody' with tokens hold, rest, then consecutive pitches")
        try:
            pitches = [int(t) for t in vocab.tokens[2:]]
        except ValueError:
            raise DataError(f"melody vocabulary has a non-pitch token ({vocab.describe()})") from None
        codec = cls(pitches[0], pitches[-1])
        if codec.vocab.tokens != vocab.tokens:
            raise DataError(f"melody vocabulary pitches are not consecutive ({vocab.describe()})")
        return codec

    def encode(self, melody: Melody) -> np.ndarray:
        """Melody -> int32 ids, shape (melody.steps,). A pitch outside the range raises DataError."""
        ev = np.asarray(melody.events, dtype=np.int64)
        ids = np.where(ev == HOLD, HOLD_ID, np.where(ev == OFF, REST_ID, ev - self.min_pitch + 2))
        bad = (ev >= 0) & ((ev < self.min_pitch) | (ev > self.max_pitch))
        if bad.any():
            t = int(np.flatnonzero(bad)[0])
            raise DataError(f"pitch {int(ev[t])} at step {t} is outside the codec range "
                            f"{self.min_pitch}..{self.max_pitch}; extract with out_of_range=clamp or drop")
        return ids.astype(np.int32)

    def decode(self, ids: Sequence[int] | np.ndarray, *, steps_per_quarter: int = 4, qpm: float = 120.0,
               time_signature: Sequence = (4, 4), program: int = 0) -> Melody:
        """ids (steps,) -> Melody with the given metadata. An id outside 0..size-1 raises DataError.

        time_signature: (numerator, denominator), or a metre: a list of (step, numerator, denominator) changes
        (app/music/metre.py), e.g. [(0, 3, 4), (48, 6, 8)]."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if ids.size and (ids.min() < 0 or ids.max() >= self.size):
            raise DataError(f"token id outside 0..{self.size - 1} (got min {ids.min()}, max {ids.max()}); "
                            f"the ids were made with another vocabulary")
        ev = np.where(ids == HOLD_ID, HOLD, np.where(ids == REST_ID, OFF, ids - 2 + self.min_pitch))
        sig, metre = split_time_signature(time_signature)
        return Melody(events=tuple(int(e) for e in ev), steps_per_quarter=steps_per_quarter, qpm=float(qpm),
                      time_signature=sig, program=program, metre=metre)

    def transpose_ids(self, ids: np.ndarray, semitones: int) -> np.ndarray | None:
        """Ids of the same melody moved by `semitones`, or None if a note would leave the pitch range."""
        ids = np.asarray(ids, dtype=np.int32)
        notes = ids >= 2
        moved = np.where(notes, ids + semitones, ids)
        if notes.any() and (moved[notes].min() < 2 or moved[notes].max() >= self.size):
            return None
        return moved.astype(np.int32)


def split_time_signature(value: Sequence) -> tuple[tuple[int, int], tuple[tuple[int, int, int], ...]]:
    """(num, den) or a metre [(step, num, den), ...] -> (the time signature at step 0, the metre or ())."""
    items = list(value)
    if items and isinstance(items[0], (tuple, list, np.ndarray)):
        metre = tuple(sorted((int(s), int(n), int(d)) for s, n, d in items))
        live = [c for c in metre if c[0] <= 0] or [metre[0]]
        return (live[-1][1], live[-1][2]), metre
    if len(items) != 2:
        raise DataError(f"time signature {value!r} is not (numerator, denominator) or [(step, num, den), ...]")
    return (int(items[0]), int(items[1])), ()


def window_ids(pieces: Sequence[np.ndarray], tx: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Cut each piece into windows of tx + 1 tokens: X = first tx, Y = last tx (Y is X shifted by one step).

    Windows start at 0, stride, 2*stride, ... and never cross a piece boundary; a piece shorter than tx + 1 tokens
    gives no window. Returns X, Y int32 of shape (n_windows, tx).
    """
    if tx < 1 or stride < 1:
        raise DataError(f"window length Tx and stride must be >= 1, got Tx={tx}, stride={stride}")
    xs, ys = [], []
    for p in pieces:
        p = np.asarray(p, dtype=np.int32)
        if len(p) < tx + 1:
            continue
        starts = np.arange(0, len(p) - tx, stride)
        idx = starts[:, None] + np.arange(tx + 1)[None, :]
        w = p[idx]
        xs.append(w[:, :-1])
        ys.append(w[:, 1:])
    if not xs:
        return np.zeros((0, tx), np.int32), np.zeros((0, tx), np.int32)
    return np.concatenate(xs), np.concatenate(ys)


def windows(pieces: Sequence[np.ndarray], tx: int, vocab_size: int, stride: int = 1
            ) -> tuple[np.ndarray, np.ndarray]:
    """One-hot training windows: X, Y float32 of shape (n_windows, tx, vocab_size); see `window_ids`.

    Memory is n_windows * tx * vocab_size * 4 bytes per array: for a large corpus use `window_ids` and one-hot
    each batch instead.
    """
    x, y = window_ids(pieces, tx, stride)
    return one_hot(x, vocab_size), one_hot(y, vocab_size)

"""Per-step inputs and labels of the structure-aware archs, computed with numpy (no TensorFlow).

Time indexing (the course's layout on whole pieces): step t reads the previous token s[t-1] (the zero input, id -1,
at t = 0) and predicts s[t]. Everything below is "about the target step t".

Metre (`MetreContext`): each step has a bar length and a position in its bar (`app.music.metre.bar_grid` from the
piece's metre changes `(step, num, den)`), and a metre class: the index of "num/den" in `metres`, or len(metres)
("other"). The context row of step t is
    counter_bits values  ±1: the binary digits of pos[t] (position of the target step in its bar, bit 0 first;
                         Magenta's binary counter, here counted from the bar line of the piece's own metre)
    len(metres) + 1      one-hot of the metre class of step t (the metre conditioning: 4/4, 3/4, 6/8 ... differ
                         even when their bars have the same length, as 3/4 and 6/8 do)

Lookback (Magenta's Lookback RNN, distances in bars of the piece's own metre): `lookback_index` gives, for each
target step t and each distance L, the step at the same position L bars earlier (-1 when there is none: before the
piece starts, or that bar is shorter). Inputs added at step t: the token at that step for each L, and for each L a
flag: whether the previous token s[t-1] equals the token L bars before *it* (s[lookback(t-1, L)]).
Labels (Magenta's rule, `lookback_labels`): the target s[t] gets label V + i ("repeat the event from
lookbacks[i] bars ago") for the most distant lookback i whose token equals s[t]; otherwise its own id. Unlike
Magenta, a repeat label whose lookback step does not exist is never a target and is removed (renormalised) when the
labels are resolved into token probabilities (`fold_repeats`), so no label means two different things.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from app.errors import OptionError
from app.music.metre import bar_grid

GRID_START = 256  # steps of the metre grid a stepper precomputes at first; it doubles when a melody runs longer
DEFAULT_METRES = ("4/4", "3/4", "6/8", "2/4", "2/2", "3/8", "9/8", "12/8", "3/2", "5/4")
Change = tuple[int, int, int]


def parse_time_signature(text: str | Sequence[int]) -> tuple[int, int]:
    """ "6/8" or (6, 8) -> (6, 8); a clear error otherwise."""
    if isinstance(text, str):
        parts = text.strip().split("/")
        try:
            num, den = (int(p) for p in parts)
        except ValueError:
            raise OptionError(f"time signature must look like 4/4, 3/4 or 6/8, got {text!r}") from None
    else:
        num, den = (int(v) for v in text)
    if not (1 <= num <= 32 and den in (1, 2, 4, 8, 16, 32)):
        raise OptionError(f"time signature {num}/{den} is not usable; the numerator must be 1..32 and the "
                          f"denominator a power of two up to 32 (e.g. 4/4, 3/4, 6/8)")
    return num, den


def piece_metre(meta: dict | None, default: Sequence[int] = (4, 4)) -> list[Change]:
    """A corpus piece's metre changes: meta["metre"] ([[step, num, den], ...]) when the corpus has it, else
    [(0, num, den)] from meta["time_signature"] (or `default`)."""
    meta = meta or {}
    changes = meta.get("metre")
    if changes:
        return [(int(s), int(n), int(d)) for s, n, d in changes]
    num, den = meta.get("time_signature") or default
    return [(0, int(num), int(den))]


@dataclass(frozen=True)
class MetreContext:
    """The metre part of every non-basic arch's input (see the module docstring)."""

    counter_bits: int = 5
    metres: tuple[str, ...] = DEFAULT_METRES
    steps_per_quarter: int = 4

    @property
    def size(self) -> int:
        return self.counter_bits + len(self.metres) + 1

    def metre_class(self, num: int, den: int) -> int:
        key = f"{int(num)}/{int(den)}"
        return self.metres.index(key) if key in self.metres else len(self.metres)

    def grid(self, length: int, changes: Sequence[Change]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(bar length, position in bar, metre class) per step, int32 arrays (length,)."""
        bar, pos = bar_grid(length, self.steps_per_quarter, changes)
        cls = np.empty(length, np.int32)
        ordered = sorted((int(s), int(n), int(d)) for s, n, d in changes)
        ordered[0] = (0, ordered[0][1], ordered[0][2]) if ordered[0][0] > 0 else ordered[0]
        for k, (start, num, den) in enumerate(ordered):
            end = ordered[k + 1][0] if k + 1 < len(ordered) else length
            cls[min(max(start, 0), length):min(max(end, 0), length)] = self.metre_class(num, den)  # pickup: < 0
        return bar, pos, cls

    def rows(self, pos: np.ndarray, cls: np.ndarray) -> np.ndarray:
        """Context rows (..., size) float32 from positions and metre classes of the same shape."""
        pos, cls = np.asarray(pos), np.asarray(cls)
        bits = (pos[..., None] >> np.arange(self.counter_bits)) & 1
        out = np.zeros(pos.shape + (self.size,), np.float32)
        out[..., :self.counter_bits] = 2.0 * bits - 1.0
        np.put_along_axis(out, (self.counter_bits + cls)[..., None].astype(np.int64), 1.0, axis=-1)
        return out


def lookback_index(bar: np.ndarray, pos: np.ndarray, lookbacks: Sequence[int]) -> np.ndarray:
    """(length, n_lookbacks) int64: the step at the same bar position `L` bars earlier, -1 if there is none."""
    bar, pos = np.asarray(bar), np.asarray(pos)
    n = len(pos)
    out = np.full((n, len(lookbacks)), -1, np.int64)
    if n == 0:
        return out
    # A piece that opens with a pickup (pos[0] > 0) starts inside bar 0, whose bar line lies at step -pos[0]:
    # that partial bar counts as a bar, and its steps before step 0 do not exist.
    starts = np.flatnonzero(pos == 0)
    if pos[0] != 0:
        starts = np.concatenate([[-int(pos[0])], starts])
    k = np.cumsum(pos == 0) - (1 if pos[0] == 0 else 0)  # bar index of each step
    for i, L in enumerate(lookbacks):
        src = k - int(L)
        ok = src >= 0
        start = starts[np.maximum(src, 0)]
        j = start + pos
        ok &= (j >= 0) & (pos < bar[np.maximum(start, 0)])
        out[:, i] = np.where(ok, j, -1)
    return out


def lookback_tokens(tokens: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Tokens at the lookback steps: (length, n) ids, -1 where the lookback step does not exist."""
    tokens = np.asarray(tokens)
    return np.where(index >= 0, tokens[np.maximum(index, 0)], -1)


def lookback_labels(tokens: np.ndarray, index: np.ndarray, vocab_size: int) -> np.ndarray:
    """Training labels (length,): V + i for the most distant lookback i that the token repeats, else the token."""
    tokens = np.asarray(tokens, np.int64)
    lb = lookback_tokens(tokens, index)
    labels = tokens.copy()
    for i in range(index.shape[1]):  # nearest first, so the most distant match is written last and wins
        labels = np.where(lb[:, i] == tokens, vocab_size + i, labels)
    return labels


def repeat_flags(tokens: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(length, n) float32: at step t, whether s[t-1] equals the token L bars before step t-1 (0 at t = 0)."""
    tokens = np.asarray(tokens, np.int64)
    lb = lookback_tokens(tokens, index)
    same = ((lb == tokens[:, None]) & (index >= 0)).astype(np.float32)
    out = np.zeros_like(same)
    out[1:] = same[:-1]
    return out


def fold_repeats(probs: np.ndarray, lb_tokens: np.ndarray, vocab_size: int) -> np.ndarray:
    """Label probabilities (..., V + n) -> token probabilities (..., V): each repeat label's mass goes to the token
    it resolves to; labels whose lookback does not exist (lb_tokens -1) are dropped and the rest renormalised."""
    probs = np.asarray(probs, np.float64)
    lb = np.asarray(lb_tokens)
    out = probs[..., :vocab_size].copy()
    flat_out = out.reshape(-1, vocab_size)
    flat_p = probs.reshape(-1, probs.shape[-1])
    flat_lb = lb.reshape(-1, lb.shape[-1])
    rows = np.arange(flat_out.shape[0])
    for i in range(flat_lb.shape[1]):
        ok = flat_lb[:, i] >= 0
        np.add.at(flat_out, (rows[ok], flat_lb[ok, i]), flat_p[ok, vocab_size + i])
    out /= out.sum(axis=-1, keepdims=True)
    return out

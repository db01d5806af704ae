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

Tune classes (`MetreContext.tune`, optional): per-piece classes computed from the piece's own tokens and given at
every step as one-hots after the metre, so a style chosen once at the start cannot drift (folk-rnn conditions on
metre and mode tokens the same way):
    rhythm  4 classes by the share of the tune's notes lasting an odd number of sixteenths (sixteenths, dotted
            eighths: hornpipes, strathspeys, 2/4 marches) below 10 %, 30 %, 60 % or above (`rhythm_class`)
    scale   12 classes: the major-scale collection (a key signature, mode-free) holding most of the tune's notes,
            as a rotation of the vocabulary's lowest pitch class (`scale_class`)
    tonic   12 classes: where the tune's tonal centre sits in that collection, in semitones above its major tonic
            (0 major, 9 minor, 7 mixolydian, 2 dorian ...), the centre being the Krumhansl-Schmuckler key estimate
            (`tonic_class`); with `scale` it is the tune's key, as an ABC K: field gives it
Generation draws them from the training tunes' joint frequencies for the metre (`draw_tune_classes`).

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
TUNE_CLASSES = {"rhythm": 4, "scale": 12, "tonic": 12}  # kind -> number of classes (this order is the input order)
RHYTHM_EDGES = (0.1, 0.3, 0.6)  # share of odd-sixteenth notes: class k when edges[k-1] <= share < edges[k]
MAJOR = (0, 2, 4, 5, 7, 9, 11)
FIRST_NOTE_ID = 2  # melody codec: 0 hold, 1 rest, 2 + k the k-th pitch of the vocabulary (app.music.codec)


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


def check_tune_kinds(kinds: Sequence[str]) -> tuple[str, ...]:
    """The tune-class kinds in input order; a clear error for unknown or repeated ones."""
    kinds = tuple(str(k) for k in kinds)
    bad = [k for k in kinds if k not in TUNE_CLASSES]
    if bad or len(set(kinds)) != len(kinds):
        raise OptionError(f"tune classes must be different ones of {', '.join(TUNE_CLASSES)}, got {list(kinds)}")
    return tuple(k for k in TUNE_CLASSES if k in kinds)


def _note_lengths(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(note-on ids, their lengths in steps: up to the next note-on or rest, or the end)."""
    ids = np.asarray(ids, np.int64)
    starts = np.flatnonzero(ids != 0)  # note-ons and rests
    ends = np.append(starts[1:], len(ids))
    on = ids[starts] >= FIRST_NOTE_ID
    return ids[starts][on], (ends - starts)[on]


def rhythm_class(ids: np.ndarray, spq: int = 4) -> int:
    """0..3 from the share of notes lasting an odd number of sixteenths (RHYTHM_EDGES); 0 without notes."""
    _, lengths = _note_lengths(ids)
    unit = max(1, spq // 4)
    if not len(lengths):
        return 0
    odd = ((lengths % unit) == 0) & ((lengths // unit) % 2 == 1)
    return int(np.searchsorted(RHYTHM_EDGES, odd.mean(), side="right"))


def collection_fit(counts: np.ndarray) -> np.ndarray:
    """(12,) per pitch-class counts -> (12,): how many fall inside each major collection {k + MAJOR}, k = 0..11."""
    counts = np.asarray(counts)
    return np.array([counts[[(k + m) % 12 for m in MAJOR]].sum() for k in range(12)])


def _scale_of(notes: np.ndarray) -> int:
    return int(np.argmax(collection_fit(np.bincount((notes - FIRST_NOTE_ID) % 12, minlength=12))))


def scale_class(ids: np.ndarray) -> int:
    """0..11: the rotation k whose major collection {k + MAJOR} (pitch classes counted from the vocabulary's lowest
    pitch) holds most of the tune's notes; the lowest such k on a tie, 0 without notes."""
    return _scale_of(_note_lengths(ids)[0])


def tonic_class(ids: np.ndarray) -> int:
    """0..11: the estimated tonic (app.music.melody.estimate_key, duration-weighted) in semitones above the major
    tonic of the tune's collection (`scale_class`); 0 without notes."""
    from app.music.melody import estimate_key

    notes, lengths = _note_lengths(ids)
    if not len(notes):
        return 0
    tonic, _ = estimate_key([(int(n) - FIRST_NOTE_ID, 0, int(d)) for n, d in zip(notes, lengths)])
    return (tonic - _scale_of(notes)) % 12


def tune_classes(ids: np.ndarray, kinds: Sequence[str], spq: int = 4) -> tuple[int, ...]:
    """A piece's class per kind (in `kinds` order) from its own tokens."""
    fn = {"rhythm": lambda: rhythm_class(ids, spq), "scale": lambda: scale_class(ids),
          "tonic": lambda: tonic_class(ids)}
    return tuple(fn[k]() for k in kinds)


def metre_label(changes: Sequence[Change]) -> str:
    """ "num/den" of a piece's first metre (the key of the prior's rows)."""
    _, num, den = sorted(changes)[0]
    return f"{num}/{den}"


def prior_rows(prior: dict, label: str) -> list[list[int]]:
    """The prior's rows for a metre label, or all metres' rows pooled when the training tunes had none in it."""
    return prior.get(label) or [r for rs in prior.values() for r in rs]


def tune_prior(pieces: Sequence[np.ndarray], metres: Sequence, kinds: Sequence[str], spq: int = 4) -> dict:
    """Joint class counts of the training pieces per metre label of their first metre: {"6/8": [[c1, ..., count],
    ...]} (what `draw_tune_classes` samples from; recorded in the model folder's config.json)."""
    counts: dict[str, dict[tuple, int]] = {}
    for p, changes in zip(pieces, metres):
        if len(p) == 0:
            continue
        c = counts.setdefault(metre_label(changes), {})
        key = tune_classes(p, kinds, spq)
        c[key] = c.get(key, 0) + 1
    return {m: [[*k, n] for k, n in sorted(c.items())] for m, c in sorted(counts.items())}


def tune_class_nats(prior: dict, pieces: Sequence[np.ndarray], metres: Sequence, kinds: Sequence[str],
                    spq: int = 4) -> float:
    """Total nats of the pieces' tune classes under the prior (per metre, add-one smoothed over every class
    combination): what a tune-conditioned model's held-out NLL leaves out by being given the classes."""
    combos = int(np.prod([TUNE_CLASSES[k] for k in kinds]))
    total = 0.0
    for p, changes in zip(pieces, metres):
        if len(p) < 2:
            continue
        counts = {tuple(r[:-1]): r[-1] for r in prior_rows(prior, metre_label(changes))}
        n = sum(counts.values())
        total -= float(np.log((counts.get(tune_classes(p, kinds, spq), 0) + 1) / (n + combos)))
    return total


def check_tune_prior(prior, kinds: Sequence[str]) -> dict:
    """The prior read back from config.json: {metre: [[class per kind..., count >= 1], ...]}, classes in range."""
    if not isinstance(prior, dict) or not prior:
        raise OptionError(f"tune_prior must be a non-empty object of metre -> rows, got {type(prior).__name__}")
    for m, rows in prior.items():
        parse_time_signature(m)
        if not isinstance(rows, list) or not rows:
            raise OptionError(f"tune_prior[{m!r}] must be a non-empty list of rows")
        for row in rows:
            ok = (isinstance(row, list) and len(row) == len(kinds) + 1
                  and all(isinstance(v, int) and not isinstance(v, bool) for v in row) and row[-1] >= 1
                  and all(0 <= v < TUNE_CLASSES[k] for v, k in zip(row, kinds)))
            if not ok:
                raise OptionError(f"tune_prior[{m!r}] has a bad row {row!r}; expected {len(kinds)} class numbers "
                                  f"({', '.join(kinds)}) and a count >= 1")
    return prior


def draw_tune_classes(prior: dict, metre: str, n: int, rng: np.random.Generator,
                      fixed: dict[int, int] | None = None) -> list[tuple[int, ...]]:
    """n class tuples drawn from the prior's rows for `metre` (all metres pooled when the training tunes had none
    in it); `fixed` {position: class} keeps only rows with those classes, or sets them when no row has them."""
    rows = prior_rows(prior, metre)
    fixed = fixed or {}
    keep = [r for r in rows if all(r[i] == v for i, v in fixed.items())] or rows
    counts = np.array([r[-1] for r in keep], np.float64)
    picks = rng.choice(len(keep), size=n, p=counts / counts.sum())
    out = []
    for k in picks:
        row = list(keep[k][:-1])
        for i, v in fixed.items():
            row[i] = v
        out.append(tuple(int(v) for v in row))
    return out


@dataclass(frozen=True)
class MetreContext:
    """The metre part of every non-basic arch's input, and the optional tune classes (see the module docstring)."""

    counter_bits: int = 5
    metres: tuple[str, ...] = DEFAULT_METRES
    steps_per_quarter: int = 4
    tune: tuple[str, ...] = ()

    @property
    def size(self) -> int:
        return self.counter_bits + len(self.metres) + 1 + sum(TUNE_CLASSES[k] for k in self.tune)

    def tune_onehot(self, classes: Sequence[int] = ()) -> np.ndarray:
        """The tune-class part of a context row (float32), one class per kind of `tune`."""
        classes = tuple(int(c) for c in classes)
        if len(classes) != len(self.tune):
            raise OptionError(f"this model takes tune classes ({', '.join(self.tune) or 'none'}), got {classes}")
        parts = []
        for k, c in zip(self.tune, classes):
            if not 0 <= c < TUNE_CLASSES[k]:
                raise OptionError(f"{k} class must be 0..{TUNE_CLASSES[k] - 1}, got {c}")
            parts.append(np.eye(TUNE_CLASSES[k], dtype=np.float32)[c])
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

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

    def rows(self, pos: np.ndarray, cls: np.ndarray, tune: Sequence[int] = ()) -> np.ndarray:
        """Context rows (..., size) float32 from positions and metre classes of the same shape, and the piece's
        tune classes (one per kind of `self.tune`, the same at every step)."""
        pos, cls = np.asarray(pos), np.asarray(cls)
        onehot = self.tune_onehot(tune)
        bits = (pos[..., None] >> np.arange(self.counter_bits)) & 1
        out = np.zeros(pos.shape + (self.size,), np.float32)
        out[..., :self.counter_bits] = 2.0 * bits - 1.0
        np.put_along_axis(out, (self.counter_bits + cls)[..., None].astype(np.int64), 1.0, axis=-1)
        if onehot.size:
            out[..., self.size - onehot.size:] = onehot
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

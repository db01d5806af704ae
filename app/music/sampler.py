"""Melody generation on the numpy stepper (no TensorFlow): sampling, greedy, beam search, primer, constraints.

A model reads token ids; the first input is id -1 (the course's x0 = zeros), with zero initial state (a0 = c0 = 0)
unless a state is given. Token meaning comes from `note_pitch`, an int array (vocab,) holding the MIDI pitch of
each note-on token and -1 for the others (hold, rest): constraints mask note-ons only, so hold and rest stay allowed.

Decoding (`MelodyOptions`):
  sampling   temperature / top-k / top-p from `app.core.sampling.SamplingOptions`, one np.random.Generator seeded
             by `seed` (same seed, same melodies); n melodies are drawn as one batch, and one melody on the
             stepper's batch-1 runner (app.core.runner: the same model, the same draws, a few times faster).
  greedy     argmax at each step (the document's choice); all n melodies are then the same.
  beam       beam > 1: the n most likely continuations from a beam of max(beam, n) hypotheses
             (`app.core.beam.beam_search`; temperature/top-k/top-p do not apply).
  primer     token ids fed first (teacher-forced); the output is primer + `steps` new tokens.
  key, min_pitch, max_pitch   note-ons outside the key's scale or the pitch range get probability 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.core.options import opt, validate
from app.core.runner import runner_for
from app.core.sampling import SamplingOptions, row_chooser, sample_next
from app.errors import OptionError
from app.music.scales import pitch_mask

MAX_STEPS = 4096  # per melody; 256 bars of 4/4 at sixteenth-note resolution
MAX_OUTPUTS = 64
MAX_BEAM = 64


@dataclass(frozen=True)
class MelodyOptions:
    """What to decode: n melodies of `steps` new grid steps (declared once: flags, bounds, web ranges)."""

    n: int = opt(1, "number of melodies", lo=1, hi=MAX_OUTPUTS, flag=("-n",), label="n (number of melodies)")
    steps: int = opt(128, "length in grid steps", lo=1, hi=MAX_STEPS, cli=False)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    beam: int = opt(1, "beam search with this beam size (> 1); temperature/top-k/top-p then do not apply",
                    lo=1, hi=MAX_BEAM)
    seed: int | None = opt(None, "same seed, same melodies", lo=0, hi=2**63 - 1)
    key: str | None = opt(None, "keep note-ons in this key/scale, e.g. C, Am, 'D dorian', chromatic")
    min_pitch: int | None = opt(None, "lowest MIDI pitch allowed", lo=0, hi=127)
    max_pitch: int | None = opt(None, "highest MIDI pitch allowed", lo=0, hi=127)

    def __post_init__(self) -> None:
        validate(self)
        if self.min_pitch is not None and self.max_pitch is not None and self.min_pitch > self.max_pitch:
            raise OptionError(f"min pitch {self.min_pitch} is above max pitch {self.max_pitch}")
        if self.key is not None:
            pitch_mask(self.key, np.array([60]))  # raises OptionError for an unknown key


def constraint_mask(note_pitch: np.ndarray, key: str | None = None, min_pitch: int | None = None,
                    max_pitch: int | None = None) -> np.ndarray:
    """Bool (vocab,): False for note-on tokens outside the key or the pitch range. Errors if no note is left."""
    note_pitch = np.asarray(note_pitch)
    is_note = note_pitch >= 0
    ok = pitch_mask(key, note_pitch)
    if min_pitch is not None:
        ok &= ~is_note | (note_pitch >= min_pitch)
    if max_pitch is not None:
        ok &= ~is_note | (note_pitch <= max_pitch)
    if is_note.any() and not (ok & is_note).any():
        lo, hi = int(note_pitch[is_note].min()), int(note_pitch[is_note].max())
        raise OptionError(f"the constraints (key={key}, pitch range {min_pitch}..{max_pitch}) leave no note the "
                          f"model can play (its range is {lo}..{hi}); widen the range or change the key")
    return ok


def prime(stepper, primer: np.ndarray, batch: int, state=None):
    """Feed x0 (-1) and then the primer tokens; returns (state, logits of the next step (batch, vocab))."""
    state = stepper.zero_state(batch) if state is None else state
    x = np.full(batch, -1, np.int64)
    logits, state = stepper.step(x, state)
    for tok in np.asarray(primer, np.int64):
        logits, state = stepper.step(np.full(batch, tok), state)
    return state, logits


def generate_one(stepper, primer: np.ndarray, steps: int, sampling: SamplingOptions,
                 allowed: np.ndarray | None, seed: int | None) -> np.ndarray:
    """One melody's new tokens (steps,) int32 on the stepper's batch-1 runner (app.core.runner): x0, the primer,
    then `steps` tokens drawn by `row_chooser` (the same distribution as the batched loop's `sample_next`)."""
    runner = runner_for(stepper)
    choose = row_chooser(runner.kind, sampling, allowed, np.random.default_rng(seed))
    scores = runner.step(-1)
    for tok in primer.tolist():
        scores = runner.step(tok)
    new = [0] * steps
    last = steps - 1
    for t in range(steps):
        x = new[t] = choose(scores)
        if t < last:
            scores = runner.step(x)
    return np.array(new, np.int32)


def generate_ids(stepper, note_pitch: np.ndarray, options: MelodyOptions,
                 primer: np.ndarray | None = None) -> np.ndarray:
    """Melodies as token ids, shape (n, len(primer) + steps); each row starts with the primer."""
    primer = np.zeros(0, np.int32) if primer is None else np.asarray(primer, np.int32)
    if primer.size and (primer.min() < 0 or primer.max() >= stepper.vocab_size):
        raise OptionError(f"primer ids must be in 0..{stepper.vocab_size - 1}")
    allowed = constraint_mask(note_pitch, options.key, options.min_pitch, options.max_pitch)
    if allowed.all():
        allowed = None  # no constraint: skip the masking work at every step
    n, steps = options.n, options.steps
    if options.beam > 1:
        from app.core.beam import beam_search

        if primer.size:  # x0 and all primer tokens but the last; the last is the beam's first input
            state, _ = prime(stepper, primer[:-1], 1)
            last = int(primer[-1])
        else:
            state, last = stepper.zero_state(1), -1
        new, _ = beam_search(stepper.step, stepper.select, state, last, steps, max(options.beam, n), allowed,
                             n_best=n)
    elif n == 1:
        new = generate_one(stepper, primer, steps, options.sampling, allowed, options.seed)[None]
    else:
        rng = np.random.default_rng(options.seed)
        state, logits = prime(stepper, primer, n)
        new = np.empty((n, steps), np.int32)
        for t in range(steps):
            x = sample_next(logits, rng, options.sampling, allowed)
            new[:, t] = x
            if t + 1 < steps:
                logits, state = stepper.step(x, state)
    return np.concatenate([np.broadcast_to(primer, (n, primer.size)), new], axis=1).astype(np.int32)

"""Where do generated rhythms drift from real ones? Note lengths free-running vs held-out, and the same model's
calibration on held-out tunes when teacher-forced.

Run: .venv/bin/python bench/rhythm.py [--model models/folk] [--corpus data/corpora/default] [-n 100] [--pieces 0]

1. Free-running: n melodies at T = 1.0 (lengths and metres of held-out half A, as `music report` draws them) vs
   held-out half B: share of notes lasting 1, 2, 3, 4, 6 ... grid steps.
2. Teacher-forced on the validation tunes (the first `--pieces`; 0 = all): after a note-on, the mean predicted probability that
   the next step starts a new note (a 1-step note) vs how often it does. Equal figures with a gap in (1) mean the
   model is calibrated and the difference comes from sampling its own output (exposure bias).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.sampling import softmax  # noqa: E402
from app.music.archs.features import piece_metre  # noqa: E402
from app.music.codec import HOLD_ID, REST_ID  # noqa: E402
from app.music.corpus import load_corpus  # noqa: E402
from app.music.features import events_from_ids, notes_of  # noqa: E402
from app.music.generate import MelodyGenerator  # noqa: E402
from app.music.report import generate_melodies, heldout_halves, target_indices  # noqa: E402

MAX_LEN = 24


def length_shares(events) -> np.ndarray:
    lengths = [e - s for ev in events for _, s, e in notes_of(ev)]
    return np.bincount(np.minimum(lengths, MAX_LEN), minlength=MAX_LEN + 1) / max(1, len(lengths))


def note_start_calibration(rows) -> tuple[float, float, int]:
    """Teacher-forced, at every step after a note-on: (summed probability of a new note, new notes in the tokens,
    steps). rows: (tokens (T,), run) pairs, run(inputs (T,) with x0 = -1) -> logits (T, V) of the model."""
    pred = act = count = 0.0
    for p, run in rows:
        p = np.asarray(p)
        prev = np.concatenate([[-1], p[:-1]])
        probs = softmax(np.asarray(run(prev), np.float64))
        after_note = (prev >= 0) & (prev != HOLD_ID) & (prev != REST_ID)
        new_note = np.ones(probs.shape[1], bool)
        new_note[[HOLD_ID, REST_ID]] = False
        pred += probs[after_note][:, new_note].sum()
        act += np.isin(p[after_note], np.flatnonzero(new_note)).sum()
        count += after_note.sum()
    return float(pred), float(act), int(count)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/folk")
    ap.add_argument("--corpus", default="data/corpora/default")
    ap.add_argument("-n", type=int, default=100)
    ap.add_argument("--pieces", type=int, default=0)
    args = ap.parse_args(argv)
    model, corpus = MelodyGenerator.load(args.model), load_corpus(args.corpus)
    a, b = heldout_halves(corpus, 0)
    pick = target_indices(len(a.events), args.n, 0)
    metres = [a.metres[k] for k in pick] if model.metre_conditioned else None
    ids = generate_melodies(model, [len(a.events[k]) for k in pick], 1.0, 0, metres)
    gen = length_shares([events_from_ids(r, model.codec) for r in ids])
    ra, rb = length_shares(a.events), length_shares(b.events)
    print(f"note lengths (grid steps): share of notes, {args.n} generated at T = 1.0, held-out halves A "
          f"({len(a.events)}) and B ({len(b.events)})")
    for k in range(1, MAX_LEN + 1):
        if max(gen[k], ra[k], rb[k]) >= 0.005:
            print(f"  {k:>2}{'+' if k == MAX_LEN else ' '}  generated {100 * gen[k]:5.1f} %   held-out A "
                  f"{100 * ra[k]:5.1f} %   B {100 * rb[k]:5.1f} %")
    pieces = list(zip(corpus.val, corpus.val_meta))[:args.pieces or None]
    pred, act, count = note_start_calibration(
        (p, lambda prev, meta=meta: model.stepper.run(prev[None], [piece_metre(meta)])[0]) for p, meta in pieces)
    print(f"teacher-forced on {len(pieces)} held-out tunes, after a note-on: P(next step starts a note) predicted "
          f"{100 * pred / count:.1f} %, in the data {100 * act / count:.1f} % ({int(count):,} steps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Is a poly model's key trouble calibration or drift? Teacher-forced on held-out pieces vs free-running.

Run: .venv/bin/python bench/poly_calibration.py [--model models/chorales] [--pieces 0]

Teacher-forced: for every step at which the held-out piece starts a note, the probability the model gives to
starting notes outside the piece's key (Krumhansl-Schmuckler estimate from the piece's own notes, major or natural
minor, as the report's in-scale rate), against the share of such starts in the data. Equal figures, with the
report's lower in-scale rate for generated pieces, mean the gap comes from sampling the model's own output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.sampling import softmax  # noqa: E402
from app.music.corpus import load_corpus  # noqa: E402
from app.music.features import MAJOR_SCALE, MINOR_SCALE  # noqa: E402
from app.music.generate import MelodyGenerator  # noqa: E402
from app.music.melody import estimate_key  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/chorales")
    ap.add_argument("--pieces", type=int, default=0, help="held-out pieces to score (0 = all)")
    args = ap.parse_args(argv)
    gen = MelodyGenerator.load(args.model)
    corpus = load_corpus(gen.card["data"]["path"])
    codec = gen.codec
    pitch = codec.token_pitch()
    start = codec.is_start()
    pred = act = count = 0.0
    for p in corpus.val[:args.pieces or None]:
        p = np.asarray(p, np.int64)
        notes = codec.decode_notes(p)[0]
        tonic, mode = estimate_key(notes)
        scale = {(tonic + i) % 12 for i in (MAJOR_SCALE if mode == "major" else MINOR_SCALE)}
        out_key = start & (pitch >= 0) & ~np.isin(pitch % 12, list(scale))
        probs = softmax(gen.stepper.run(np.concatenate([[-1], p[:-1]])[None])[0].astype(np.float64))
        at = start[p]  # steps whose target token starts a note
        norm = probs[at][:, start].sum(axis=1)  # the mass on starting any note at those steps
        pred += (probs[at][:, out_key].sum(axis=1) / norm).sum()
        act += out_key[p[at]].sum()
        count += at.sum()
    print(f"teacher-forced on {len(corpus.val[:args.pieces or None])} held-out pieces, {int(count):,} note starts: "
          f"P(out-of-key | a note starts) predicted {100 * pred / count:.1f} %, in the data {100 * act / count:.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())

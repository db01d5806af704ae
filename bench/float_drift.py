"""Why a numpy and a Keras greedy sequence can part with random weights: at n_a 256 with weights of sd 0.3 (the
weights bench/music.py part 2b uses) the LSTM is chaotic, so float rounding alone changes a later argmax.

For a few random seeds: the float32 fast path (`generate_ids`, greedy, batch 1, 100 steps) against the same
equations in float64 (Keras's gate order, written out here); prints the step where the two greedy sequences part
and how far apart the float64 model's two best tokens are there (not a near-tie: the states had drifted apart).

Usage: .venv/bin/python bench/float_drift.py [--units 256] [--sd 0.3 0.1] [--seeds 3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def float64_greedy(w: dict, units: int, steps: int) -> tuple[list[int], list[float]]:
    """Greedy ids and the top-2 probability gap per step, Keras LSTM equations (gates i, f, g, o) in float64."""
    u = units
    W = {k: v.astype(np.float64) for k, v in w.items()}
    h, c, x = np.zeros(u), np.zeros(u), -1
    ids, gaps = [], []
    for _ in range(steps):
        z = (W["rnn_0/kernel"][x] if x >= 0 else 0.0) + h @ W["rnn_0/recurrent_kernel"] + W["rnn_0/bias"]
        i, f, o = (1 / (1 + np.exp(-z[k * u:(k + 1) * u])) for k in (0, 1, 3))
        c = f * c + i * np.tanh(z[2 * u:3 * u])
        h = o * np.tanh(c)
        logits = h @ W["head/kernel"] + W["head/bias"]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        top = np.sort(p)
        x = int(p.argmax())
        ids.append(x)
        gaps.append(float(top[-1] - top[-2]))
    return ids, gaps


def main(argv=None) -> int:
    from app.core.modelconfig import ModelConfig
    from app.core.sampling import SamplingOptions
    from app.core.stepper import NumpyStepper
    from app.music.sampler import MelodyOptions, generate_ids

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--units", type=int, default=256)
    ap.add_argument("--sd", type=float, nargs="+", default=[0.3, 0.1])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args(argv)
    V, u = 51, args.units
    for sd in args.sd:
        for seed in range(args.seeds):
            rng = np.random.default_rng(seed)
            shapes = {"rnn_0/kernel": (V, 4 * u), "rnn_0/recurrent_kernel": (u, 4 * u), "rnn_0/bias": (4 * u,),
                      "head/kernel": (u, V), "head/bias": (V,)}
            w = {k: rng.normal(0, sd, s).astype(np.float32) for k, s in shapes.items()}
            st = NumpyStepper(w, ModelConfig(units=u), V)
            fast = generate_ids(st, np.full(V, -1), MelodyOptions(n=1, steps=args.steps,
                                                                 sampling=SamplingOptions(greedy=True)))[0]
            ref, gaps = float64_greedy(w, u, args.steps)
            part = np.flatnonzero(np.array(ref) != fast)
            where = (f"part at step {part[0]}; the float64 model's two best tokens are {gaps[part[0]]:.1e} apart "
                     f"there" if part.size else "never part")
            print(f"n_a {u}, weights sd {sd}, seed {seed}: float32 fast path and float64 equations {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

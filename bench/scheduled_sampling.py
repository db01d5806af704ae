"""Issue 10, acceptance 2: does training on the model's own samples (parallel scheduled sampling) close the
feature gap that exposure bias leaves?

Run: .venv/bin/python bench/scheduled_sampling.py --out /tmp/ss/p25 [--model models/folk] [--p 0.25]
                                                  [--epochs 4] [--lr 1e-3] [--labels repeats|gold]
                                                  [--mask after-change|none] [--swap any|rhythm]
                                                  [--corpus data/corpora/default]
then: .venv/bin/python bench/feature_gap.py --model /tmp/ss/p25-e1 --model /tmp/ss/p25-e4 --seeds 0,1,2,3

Fine-tunes a `lookback` model folder (default the shipped models/folk) for --epochs epochs and writes one model
folder per epoch, OUT-e1 .. OUT-eK (each a complete folder that `music generate` and the benches load). Each epoch
(Duckworth et al. 2019, "Parallel scheduled sampling"; one pass, so it fits the whole-sequence trainer):
1. a teacher-forced pass of the current weights over every training chunk gives one token per step drawn at T = 1
   (a repeat label draws the token it points at);
2. each step's token is replaced by that draw with probability --p (the draw often equals the real token: p 0.25
   changes about 5 % of the inputs), and every input is rebuilt from the mixed sequence: the previous token, the
   lookback tokens and the repeat flags (the metre and bar position are the piece's own);
3. the targets stay the real tokens. --labels repeats (default): where the real tune repeats the token L bars back,
   the target stays "repeat L bars back" (copy what the mixed history holds there), so the form survives; --labels
   gold: the real token, relabelled against the mixed history (drops the repeats: repetition fell to 0.03);
4. --mask after-change (default): no loss at a step whose previous token or last sounding pitch differs from the real
   tune's (the real next note after a wrong pitch makes an interval the tune never had); --mask none: every step;
   --swap rhythm: only a draw's choice between holding and starting a note is used (a held note lasts longer, or the
   sounding pitch is struck again), so the mixed sequence keeps the tune's pitches (--swap any: the drawn token);
5. one epoch of training on the mixed chunks (Adam, --lr with the trainer's 0.92 decay per epoch, batch 32, chunks of
   256 steps as the shipped model), with the teacher-forced validation loss on the real validation chunks.
--p 0 is the control: the same fine-tune on the real inputs. Prints per epoch the share of inputs changed, the
training and validation loss (label cross-entropy, nats/step), and at the end each folder's held-out NLL on
resolved tokens (`music evaluate`'s figure).

An experiment, not a product option: BENCHMARKS.md ("Training on the model's own samples") has what it measured.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.folder import check_model_destination, load_model_folder, save_model_folder  # noqa: E402
from app.core.modelconfig import TrainConfig  # noqa: E402
from app.errors import AppError  # noqa: E402
from app.music.archs.base import folder_arch  # noqa: E402
from app.music.archs.features import (lookback_index, lookback_labels, lookback_tokens, repeat_flags,  # noqa: E402
                                      tune_classes)
from app.music.archs.lookback import training_arrays  # noqa: E402
from app.music.train import evaluate_pieces, load_music_data  # noqa: E402

HOLD = 0  # token 0 of a melody vocabulary ("hold": the sounding note goes on)
TX, BATCH = 256, 32


def last_sounding(x: np.ndarray) -> np.ndarray:
    """Per step t: the last token among x[:t+1] that is not a hold (-1 if none)."""
    at = np.maximum.accumulate(np.where(x != HOLD, np.arange(len(x)), -1))
    return np.where(at >= 0, x[np.maximum(at, 0)], -1)


def chunk(a: np.ndarray, k: int, fill=0) -> np.ndarray:
    """(T, ...) -> (k, TX, ...), padded with `fill`."""
    pad = [(0, k * TX - len(a))] + [(0, 0)] * (a.ndim - 1)
    return np.pad(a, pad, constant_values=fill).reshape(k, TX, *a.shape[1:])


class Mixer:
    """The training pieces of one lookback model, cut into chunks by its trainer's own `training_arrays`
    (`real`, `real_y`, `real_w`), and their mixed versions in the same layout (see the module docstring)."""

    def __init__(self, pieces, metres, settings, vocab_size: int, spq: int, labels: str, mask: str,
                 swap: str = "any"):
        self.pieces = [np.asarray(p, np.int64) for p in pieces if len(p)]
        metres = [m for p, m in zip(pieces, metres) if len(p)]
        self.V, self.n, self.labels, self.mask, self.swap = vocab_size, len(settings.lookbacks), labels, mask, swap
        ctx = settings.context(spq)
        self.grids = []
        for p, changes in zip(self.pieces, metres):
            bar, pos, cls = ctx.grid(len(p), changes)
            idx = lookback_index(bar, pos, settings.lookbacks)
            self.grids.append((idx, ctx.rows(pos, cls, tune_classes(p, settings.tune_classes, spq))))
        self.real, self.real_y, self.real_w = training_arrays(self.pieces, metres, settings, vocab_size, spq, TX)

    def build(self, draws, p: float, rng):
        """draws: per piece (T,) drawn tokens -> (inputs dict, labels, weights), (chunks, TX, ...)."""
        parts = {k: [] for k in ("ids", "lookback_ids", "context", "y", "w")}
        for s, (idx, rows), d in zip(self.pieces, self.grids, draws):
            T, k = len(s), math.ceil(len(s) / TX)
            if self.swap == "rhythm":
                d = self.rhythm_only(s, d)
            m = np.where(rng.random(T) < p, d, s)
            x, gold_x = np.concatenate([[-1], m[:-1]]), np.concatenate([[-1], s[:-1]])
            lbt = lookback_tokens(m, idx)
            y = s.copy()
            for i in range(self.n):  # the real token, labelled against the mixed history (most distant match wins)
                y = np.where(lbt[:, i] == s, self.V + i, y)
            if self.labels == "repeats":  # a real repeat stays a repeat of whatever the mixed history holds
                gold = lookback_labels(s, idx, self.V)
                y = np.where(gold >= self.V, gold, y)
            w = np.ones(T, np.float32)
            if self.mask == "after-change":
                w *= (x == gold_x) & (last_sounding(x) == last_sounding(gold_x))
            parts["ids"].append(chunk(x, k).astype(np.int32))
            parts["lookback_ids"].append(chunk(lbt, k, -1).astype(np.int32))
            parts["context"].append(chunk(np.concatenate([rows, repeat_flags(m, idx)], 1).astype(np.int8), k))
            parts["y"].append(chunk(y, k).astype(np.int32))
            parts["w"].append(chunk(w, k))
        cat = {k: np.concatenate(v) for k, v in parts.items()}
        return {k: cat[k] for k in ("ids", "lookback_ids", "context")}, cat["y"], cat["w"]

    @staticmethod
    def rhythm_only(s: np.ndarray, d: np.ndarray) -> np.ndarray:
        """The draws reduced to their rhythm: where the draw holds and the tune starts a note, a hold (the note
        before lasts longer); where the draw starts a note and the tune holds, the sounding pitch again (a
        re-struck note); otherwise the tune's own token. The pitch sequence stays the tune's."""
        sounding = last_sounding(s)  # at t: the last non-hold token up to t
        before = np.concatenate([[-1], sounding[:-1]])
        out = s.copy()
        longer = (d == HOLD) & (s > 1) & (before > 1)  # tokens 0 hold, 1 rest, >= 2 pitches
        struck = (d > 1) & (s == HOLD) & (sounding > 1)
        out[longer] = HOLD
        out[struck] = sounding[struck]
        return out

    def draws(self, model, rng) -> list[np.ndarray]:
        """One token per step of every piece, drawn at T = 1 from the teacher-forced pass over the real chunks."""
        logits = model.predict(self.real, batch_size=256, verbose=0).astype(np.float64)
        lb = self.real["lookback_ids"]
        logits[..., self.V:] = np.where(lb >= 0, logits[..., self.V:], -np.inf)  # no label for a missing lookback
        label = np.argmax(logits + rng.gumbel(size=logits.shape), axis=-1)
        repeat = np.take_along_axis(lb, np.clip(label - self.V, 0, self.n - 1)[..., None], -1)[..., 0]
        tokens = np.where(label >= self.V, repeat, label)
        out, r = [], 0
        for s in self.pieces:
            k = math.ceil(len(s) / TX)
            out.append(tokens[r:r + k].reshape(-1)[:len(s)])
            r += k
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(ROOT / "models" / "folk"))
    ap.add_argument("--corpus", default=str(ROOT / "data" / "corpora" / "default"))
    ap.add_argument("--out", required=True, help="folders OUT-e1 .. OUT-eK are written (new names, or --force)")
    ap.add_argument("--p", type=float, default=0.25, help="probability of replacing a step's token by the draw")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--labels", choices=("repeats", "gold"), default="repeats")
    ap.add_argument("--mask", choices=("after-change", "none"), default="after-change")
    ap.add_argument("--swap", choices=("any", "rhythm"), default="any",
                    help="rhythm: only a draw's hold-vs-new-note choice is used (Mixer.rhythm_only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="replace OUT-e* folders that are model folders")
    args = ap.parse_args()
    if not (0.0 <= args.p <= 1.0 and 1 <= args.epochs <= 50 and 0 < args.lr <= 0.1):
        sys.exit(f"need 0 <= --p <= 1, 1 <= --epochs <= 50, 0 < --lr <= 0.1; got {args.p}, {args.epochs}, {args.lr}")
    try:
        outs = [check_model_destination(f"{args.out}-e{e + 1}", force=args.force) for e in range(args.epochs)]
    except AppError as exc:
        sys.exit(f"error: {exc}")

    from app.core.train import compile_model, make_dataset
    from app.music.archs import lookback_keras
    from app.music.generate import MelodyGenerator

    folder = load_model_folder(args.model, domain="music")
    arch, settings = folder_arch(folder.config)
    if arch.name != "lookback":
        sys.exit(f"{args.model} is a {arch.name!r} model; this bench fine-tunes lookback models")
    data = load_music_data(args.corpus)
    if data.vocab.tokens != folder.vocab.tokens or data.vocab.tokens[HOLD] != "hold":
        sys.exit(f"{args.corpus}'s vocabulary is not {args.model}'s melody vocabulary")
    spq = int(data.codec.get("steps_per_quarter") or 4)
    cfg, V = folder.model_config, folder.vocab.size
    t0 = time.perf_counter()
    mixer = Mixer(data.train, data.metres("train"), settings, V, spq, args.labels, args.mask, args.swap)
    val = training_arrays(data.val, data.metres("val"), settings, V, spq, TX)
    model = lookback_keras.build_trainer(cfg, settings, V, seed=args.seed, spq=spq)
    lookback_keras.import_weights(model, cfg, folder.weights)
    tcfg = TrainConfig(epochs=args.epochs, batch_size=BATCH, learning_rate=args.lr, lr_decay=0.92, clipnorm=1.0)
    compile_model(model, tcfg, math.ceil(len(mixer.real_y) / BATCH))
    val_ds = make_dataset(val, 256, False, 0)
    print(f"{len(mixer.pieces)} training pieces in {len(mixer.real_y)} chunks ({time.perf_counter() - t0:.0f} s); "
          f"p {args.p}, swap {args.swap}, labels {args.labels}, mask {args.mask}; start: validation loss "
          f"{model.evaluate(val_ds, verbose=0):.4f}", flush=True)
    rng = np.random.default_rng(args.seed)
    for e, out in enumerate(outs):
        t = time.perf_counter()
        if args.p > 0:
            x, y, w = mixer.build(mixer.draws(model, rng), args.p, rng)
        else:
            x, y, w = mixer.real, mixer.real_y, mixer.real_w
        real = mixer.real_w > 0
        changed = float((x["ids"] != mixer.real["ids"])[real].mean())
        masked = 1.0 - float(w[real].mean())
        h = model.fit(make_dataset((x, y, w), BATCH, True, args.seed + e), validation_data=val_ds, epochs=1,
                      verbose=0).history
        card = {**folder.card, "name": out.name, "status": "done",
                "bench_scheduled_sampling": {"from": str(args.model), "epoch": e + 1, "p": args.p,
                                             "swap": args.swap, "labels": args.labels, "mask": args.mask,
                                             "lr": args.lr}}
        save_model_folder(out, keras_model=model, weights=lookback_keras.export_weights(model, cfg),
                          vocab=folder.vocab, config=folder.config, card=card)
        nll = evaluate_pieces(MelodyGenerator.load(out).stepper, data.val, metres=data.metres("val"))
        print(f"epoch {e + 1}: inputs changed {changed:.3f}, loss masked {masked:.3f}, loss {h['loss'][-1]:.4f}, "
              f"validation loss {h['val_loss'][-1]:.4f}, held-out NLL {nll['nll_nats_per_step']:.4f} "
              f"({time.perf_counter() - t:.0f} s) -> {out}", flush=True)


if __name__ == "__main__":
    main()

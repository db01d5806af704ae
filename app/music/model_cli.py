"""`python -m app music {train,generate,evaluate}`: parse options, call the library, print a summary.

Only argparse at import time; generation imports numpy/pretty_midi/matplotlib but never TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DEFAULT_MODEL = "models/folk"
DEFAULT_CORPUS = "data/corpora/default"


def register(sub) -> None:
    t = sub.add_parser("train", help="train (or --resume, or fine-tune --from) a melody model on a corpus")
    t.add_argument("--corpus", default=DEFAULT_CORPUS, help=f"corpus folder (default {DEFAULT_CORPUS})")
    t.add_argument("--out", required=True, help="model folder to write, e.g. models/mytunes")
    t.add_argument("--from", dest="from_model", metavar="MODEL",
                   help="fine-tune this model folder (e.g. models/folk); its vocabulary must cover the corpus")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run saved in --out")
    t.add_argument("--epochs", type=int, help="maximum epochs in total (early stopping may end sooner)")
    t.add_argument("--cell", choices=("lstm", "gru"), help="recurrent cell (default lstm)")
    t.add_argument("--units", type=int, help="n_a, the cell size")
    t.add_argument("--layers", type=int)
    t.add_argument("--dropout", type=float)
    t.add_argument("--tx", type=int, help="training chunk length in steps")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, dest="learning_rate")
    t.add_argument("--lr-decay", type=float, help="learning-rate factor per epoch (0 < d <= 1)")
    t.add_argument("--patience", type=int, help="epochs without validation improvement before stopping")
    t.add_argument("--seed", type=int)
    t.add_argument("--distribute", choices=("auto", "none", "mirrored", "multi-worker"),
                   help="none, mirrored (local GPUs), multi-worker (TF_CONFIG machines); default auto: mirrored "
                        "when more than one GPU is visible, else none. --batch-size is per replica")
    t.add_argument("--logdir", help="TensorBoard log folder (default runs/music/<model name>)")
    t.add_argument("--no-baselines", action="store_true", help="skip the n-gram baselines in the model card")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate melodies: .mid + .wav + piano-roll .png per melody")
    g.add_argument("--model", default=DEFAULT_MODEL, help=f"model folder (default {DEFAULT_MODEL})")
    g.add_argument("-n", type=int, default=1, help="number of melodies (default 1, at most 64)")
    length = g.add_mutually_exclusive_group()
    length.add_argument("--bars", type=int, help="length in bars of the model's time signature (default 8)")
    length.add_argument("--steps", type=int, help="length in grid steps (at most 4096)")
    g.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is safer, higher is wilder")
    g.add_argument("--top-k", type=int, help="sample among the k most likely tokens")
    g.add_argument("--top-p", type=float, help="nucleus sampling, 0 < p <= 1")
    g.add_argument("--greedy", action="store_true", help="argmax at every step (the document's choice)")
    g.add_argument("--beam", type=int, default=1, help="beam search with this beam size (> 1)")
    g.add_argument("--seed", type=int, help="same seed, same melodies")
    primer = g.add_mutually_exclusive_group()
    primer.add_argument("--primer", help='MIDI pitches to continue, one quarter note each, e.g. "60 62 64"')
    primer.add_argument("--primer-midi", metavar="FILE", help="a MIDI file whose melody is continued")
    g.add_argument("--key", help="keep note-ons in this key/scale, e.g. C, Am, 'D dorian', chromatic")
    g.add_argument("--min-pitch", type=int, help="lowest MIDI pitch allowed")
    g.add_argument("--max-pitch", type=int, help="highest MIDI pitch allowed")
    g.add_argument("--qpm", type=float, default=120.0, help="tempo in quarter notes per minute (default 120)")
    g.add_argument("--program", type=int, default=0, help="General MIDI program 0..127 (default 0, piano)")
    g.add_argument("--out-dir", default="outputs/music", help="where the files go (default outputs/music)")
    g.add_argument("--synth", choices=("auto", "fluidsynth", "builtin"), default="auto",
                   help="WAV renderer: FluidSynth if installed (auto), or our built-in synthesiser")
    g.add_argument("--no-wav", action="store_true")
    g.add_argument("--no-png", action="store_true")
    g.add_argument("--json", action="store_true", help="print the results as JSON")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="held-out NLL/step, perplexity, accuracy next to n-gram baselines")
    e.add_argument("--model", default=DEFAULT_MODEL)
    e.add_argument("--corpus", default=DEFAULT_CORPUS, help="corpus whose validation pieces are scored")
    e.add_argument("--no-baselines", action="store_true")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)


def cmd_train(args) -> int:
    import dataclasses

    from app.music.train import DEFAULT_MODEL as M, DEFAULT_TRAIN as T, DEFAULT_TX, load_music_data, train_music

    def pick(cfg, names):
        return dataclasses.replace(cfg, **{k: getattr(args, k) for k in names if getattr(args, k) is not None})

    model_cfg = pick(M, ("cell", "units", "layers", "dropout"))
    train_cfg = pick(T, ("epochs", "batch_size", "learning_rate", "lr_decay", "patience", "seed", "distribute"))
    out = Path(args.out)
    data = load_music_data(args.corpus)
    log_dir = args.logdir or str(Path("runs") / "music" / out.name)
    what = f"fine-tuning {args.from_model}" if args.from_model else ("resuming" if args.resume else "training")
    print(f"{what} {out} on {args.corpus}: {len(data.train)} train / {len(data.val)} validation pieces",
          file=sys.stderr)
    from app.core.distribute import cudnn_warning, make_placement

    placement = make_placement(train_cfg.distribute)
    print(placement.describe(), file=sys.stderr)
    warning = cudnn_warning(model_cfg.recurrent_dropout, placement)
    if warning:
        print(warning, file=sys.stderr)
    card = train_music(data, out, model_cfg, train_cfg, tx=args.tx or DEFAULT_TX, resume=args.resume,
                       from_model=args.from_model, log_dir=log_dir, progress=not args.quiet,
                       baselines=not args.no_baselines, placement=placement)
    v = card["metrics"]["validation"]
    print(f"saved {out}: {card['epochs_done']} epochs (best {card['best_epoch']}), {card['train_seconds']} s; "
          f"validation {v['nll_nats_per_step']:.4f} nats/step, perplexity {v['perplexity']:.3f}, "
          f"accuracy {v['accuracy']:.3f}")
    for row in card["metrics"].get("baselines", []):
        print(f"  baseline {row['name']:<40} {row['nll']:.4f} nats/step")
    print(f"TensorBoard logs: {log_dir}")
    return 0


def cmd_generate(args) -> int:
    from app.core.sampling import SamplingOptions
    from app.music.generate import GenerateRequest, generate

    sampling = SamplingOptions(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                               greedy=args.greedy)
    req = GenerateRequest(model=args.model, n=args.n, bars=args.bars, steps=args.steps, sampling=sampling,
                          beam=args.beam, seed=args.seed, key=args.key, min_pitch=args.min_pitch,
                          max_pitch=args.max_pitch, primer_pitches=args.primer, primer_midi=args.primer_midi,
                          qpm=args.qpm, program=args.program, out_dir=args.out_dir, wav=not args.no_wav,
                          png=not args.no_png, synth=args.synth)
    results = generate(req)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "ids"} for r in results], indent=1))
        return 0
    for r in results:
        files = "  ".join(r[k] for k in ("mid", "wav", "png") if k in r)
        print(files)
        print(f"  {r['notes']} notes, {r['steps']} steps"
              + (f" ({r['primer_steps']} primer)" if r["primer_steps"] else "")
              + (f", WAV by {r['synth']}" if "synth" in r else ""), file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from app.music.train import evaluate_model

    report = evaluate_model(args.model, args.corpus, baselines=not args.no_baselines)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    m = report["model_metrics"]
    print(f"model {args.model} on the validation pieces of {args.corpus} ({m['pieces']} pieces, {m['steps']} "
          f"scored steps; nats per step)")
    print(f"  {'':<44} {'NLL/step':>9} {'perplexity':>11} {'accuracy':>9}")
    print(f"  {'LSTM model':<44} {m['nll_nats_per_step']:>9.4f} {m['perplexity']:>11.3f} {m['accuracy']:>9.3f}")
    import math

    for row in report.get("baselines", []):
        print(f"  {row['name']:<44} {row['nll']:>9.4f} {math.exp(row['nll']):>11.3f} {'-':>9}")
    if report.get("baselines"):
        best = min(r["nll"] for r in report["baselines"])
        print(f"  model vs best n-gram: {100 * (1 - m['nll_nats_per_step'] / best):+.1f} % lower NLL")
    return 0

"""`python -m app music {train,generate,evaluate}`: parse options, call the library, print a summary.

Only argparse at import time; generation imports numpy/pretty_midi/matplotlib but never TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app.core.modelconfig import ModelConfig, TrainConfig
from app.core.options import add_dataclass_args
from app.core.sampling import SamplingOptions
from app.errors import OptionError
from app.music.sampler import MelodyOptions
from app.music.train import DEFAULT_TX, PRESETS

MODEL_HELP = "model folder (default: the shipped models/folk, found as app/core/paths.py says)"


def register(sub) -> None:
    t = sub.add_parser("train", help="train (or --resume, or fine-tune --from) a melody model on a corpus")
    t.add_argument("--corpus", help="corpus folder (default: the default corpus, built on first use)")
    t.add_argument("--out", required=True, help="model folder to write, e.g. models/mytunes")
    t.add_argument("--force", action="store_true", help="replace --out if it is an existing model folder")
    t.add_argument("--from", dest="from_model", metavar="MODEL",
                   help="fine-tune this model folder (e.g. models/folk); its vocabulary must cover the corpus")
    t.add_argument("--resume", action="store_true", help="continue the interrupted run saved in --out")
    t.add_argument("--preset", choices=tuple(PRESETS), default="medium",
                   help="named settings (app/music/train.py; medium = the shipped folk model's); the flags below "
                        "override single settings (default: medium)")
    for i, cls in enumerate((ModelConfig, TrainConfig)):
        add_dataclass_args(t, cls, defaults=PRESETS["medium"][i], default_label="preset medium")
    t.add_argument("--tx", type=int, help=f"training chunk length in steps (default {DEFAULT_TX})")
    t.add_argument("--logdir", help="TensorBoard log folder (default runs/music/<model name>)")
    t.add_argument("--no-baselines", action="store_true", help="skip the n-gram baselines in the model card")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    from app.music.archs.base import add_arch_arguments

    add_arch_arguments(t)
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate melodies: .mid + .wav + piano-roll .png + ABC + engraved .svg "
                                        "score per melody (--formats)")
    g.add_argument("--model", help=MODEL_HELP)
    length = g.add_mutually_exclusive_group()
    length.add_argument("--bars", type=int, help="length in bars of the model's time signature (default 8)")
    length.add_argument("--steps", type=int, help="length in grid steps (at most 4096)")
    add_dataclass_args(g, MelodyOptions)
    add_dataclass_args(g, SamplingOptions)
    primer = g.add_mutually_exclusive_group()
    primer.add_argument("--primer", help='MIDI pitches to continue, one quarter note each, e.g. "60 62 64"')
    primer.add_argument("--primer-file", "--primer-midi", dest="primer_file", metavar="FILE",
                        help="a .mid, .abc, .musicxml or .krn file whose melody is continued (read like the corpus, "
                             "within the primer limits); the output takes its time signature unless "
                             "--time-signature is given (--primer-midi is the old name)")
    g.add_argument("--primer-tune", metavar="X", help="the X: number of the tune to continue in an ABC --primer-file "
                                                      "(default: its first tune)")
    g.add_argument("--time-signature", metavar="N/D",
                   help="metre of the melody, e.g. 3/4 or 6/8 (default: the model's most common one); lookback and "
                        "attention models are conditioned on it, basic models only get its bar lines")
    g.add_argument("--qpm", type=float, default=120.0, help="tempo in quarter notes per minute (default 120)")
    g.add_argument("--program", type=int, default=0, help="General MIDI program 0..127 (default 0, piano)")
    g.add_argument("--out-dir", default="outputs/music", help="where the files go (default outputs/music)")
    g.add_argument("--synth", choices=("auto", "fluidsynth", "builtin"), default="auto",
                   help="WAV renderer: FluidSynth if installed (auto), or our built-in synthesiser")
    from app.music.formats import OutputFormats

    add_dataclass_args(g, OutputFormats)
    g.add_argument("--no-wav", action="store_true", help="leave the .wav out of --formats")
    g.add_argument("--no-png", action="store_true", help="leave the .png out of --formats")
    g.add_argument("--json", action="store_true", help="print the results as JSON")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="held-out NLL/step, perplexity, accuracy next to n-gram baselines")
    e.add_argument("--model", help=MODEL_HELP)
    e.add_argument("--corpus", help="corpus whose validation pieces are scored (default: the one recorded in the "
                                    "model's card, else the default corpus, built on first use)")
    e.add_argument("--no-baselines", action="store_true")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_evaluate)


def resumed_train_config(out, fallback: TrainConfig) -> TrainConfig:
    """The training settings recorded in the model folder `out` (config.json "train"), so that `--resume` keeps
    the run's batch size and learning-rate schedule; `fallback` when the folder cannot be read (train_music then
    says why it cannot resume)."""
    import dataclasses

    try:
        saved = json.loads((Path(out) / "config.json").read_text()).get("train", {})
    except (OSError, ValueError, AttributeError):
        return fallback
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    try:
        return dataclasses.replace(fallback, **{k: v for k, v in saved.items() if k in names})
    except (TypeError, ValueError, OptionError):
        return fallback


def cmd_train(args) -> int:
    from app.core.options import from_args
    from app.music.corpus import corpus_for
    from app.music.train import load_music_data, train_music

    model_base, train_base = PRESETS[args.preset]
    if args.resume:  # the run continues with its own settings; flags given now (e.g. --epochs) replace them
        train_base = resumed_train_config(args.out, train_base)
    model_cfg, train_cfg = from_args(ModelConfig, args, model_base), from_args(TrainConfig, args, train_base)
    from app.core.folder import check_model_destination

    out = Path(args.out) if args.resume else check_model_destination(args.out, force=args.force)  # before any work
    args.corpus = corpus_for(args.corpus, progress=not args.quiet)
    data = load_music_data(args.corpus)
    log_dir = args.logdir or str(Path("runs") / "music" / out.name)
    what = f"fine-tuning {args.from_model}" if args.from_model else ("resuming" if args.resume else "training")
    print(f"{what} {out} on {args.corpus}: {len(data.train)} train / {len(data.val)} validation pieces",
          file=sys.stderr)
    from app.music.archs.base import get_arch, settings_from_args

    arch_settings = None
    if args.arch is not None or any(k.startswith("arch_") and v is not None for k, v in vars(args).items()):
        if args.arch is None and not (args.from_model or args.resume):
            raise OptionError("arch settings (e.g. --lookbacks) need --arch (lookback or attention)")
        if args.arch is not None:
            arch_settings = settings_from_args(get_arch(args.arch), args) or None
        else:  # fine-tuning/resuming: the settings are checked against the parent's arch
            from app.core.folder import load_model_folder
            from app.music.archs.base import folder_arch

            parent, _ = folder_arch(load_model_folder(args.from_model or args.out, domain="music").config)
            arch_settings = settings_from_args(parent, args) or None
    from app.core.distribute import cudnn_warning, make_placement

    placement = make_placement(train_cfg.distribute)
    print(placement.describe(), file=sys.stderr)
    warning = cudnn_warning(model_cfg.recurrent_dropout, placement)
    if warning:
        print(warning, file=sys.stderr)
    card = train_music(data, out, model_cfg, train_cfg, tx=args.tx or DEFAULT_TX, resume=args.resume,
                       from_model=args.from_model, log_dir=log_dir, progress=not args.quiet,
                       baselines=not args.no_baselines, force=args.force, arch=args.arch,
                       arch_settings=arch_settings, placement=placement)
    v = card["metrics"]["validation"]
    print(f"saved {out} ({card['arch']['name']}): {card['epochs_done']} epochs (best {card['best_epoch']}), {card['train_seconds']} s; "
          f"validation {v['nll_nats_per_step']:.4f} nats/step, perplexity {v['perplexity']:.3f}, "
          f"accuracy {v['accuracy']:.3f}")
    for row in card["metrics"].get("baselines", []):
        print(f"  baseline {row['name']:<40} {row['nll']:.4f} nats/step")
    print(f"TensorBoard logs: {log_dir}")
    return 0


def cmd_generate(args) -> int:
    from app.core.options import from_args, given
    from app.music.generate import MelodyGenerator, write_melodies

    from app.music.formats import OutputFormats

    out = from_args(OutputFormats, args)  # checks --formats before any work
    no_svg = False
    if "svg" in out.chosen:
        from app.music.engrave import available

        if not available() and args.formats is not None:
            raise OptionError("--formats svg needs the verovio package to engrave the score: pip install verovio "
                              "(it is in requirements.txt), or leave svg out")
        if not available():  # the default set engraves when it can (a note says so once the files are written)
            import dataclasses

            out = dataclasses.replace(out, formats=",".join(f for f in out.chosen if f != "svg"))
            no_svg = True
    gen = MelodyGenerator.load(args.model)
    if getattr(gen, "polyphonic", False) and "abc" in out.scores:  # ABC is written for melodies
        if args.formats is not None:
            raise OptionError(f"--formats abc: ABC is written for melody models; {gen.path.name} is polyphonic "
                              f"(its scores are musicxml and svg)")
        import dataclasses

        out = dataclasses.replace(out, formats=",".join(f for f in out.chosen if f != "abc"))
    formats = out.chosen
    melodies = gen.generate(bars=args.bars, steps=args.steps, primer=args.primer, primer_file=args.primer_file,
                            primer_tune=args.primer_tune, qpm=args.qpm, program=args.program,
                            time_signature=args.time_signature, sampling=from_args(SamplingOptions, args),
                            **{k: v for k, v in given(MelodyOptions, args).items() if k != "steps"})  # --steps above
    results = write_melodies(melodies, args.out_dir, wav="wav" in formats and not args.no_wav,
                             png="png" in formats and not args.no_png, synth=args.synth, title=gen.path.name,
                             scores=out.scores, fold=not out.no_fold)
    if no_svg:
        print("note: no engraved .svg score: the verovio package is not installed (pip install verovio)",
              file=sys.stderr)
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "ids"} for r in results], indent=1))
        return 0
    for r in results:
        files = "  ".join(r[k] for k in ("mid", "wav", "png", "abc", "musicxml", "svg") if k in r)
        print(files)
        print(f"  {r['notes']} notes, {r['steps']} steps"
              + (f" ({r['primer_steps']} primer)" if r["primer_steps"] else "")
              + (f", WAV by {r['synth']}" if "synth" in r else ""), file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from app.music.train import evaluate_model

    report = evaluate_model(args.model, args.corpus, baselines=not args.no_baselines)
    args.model, args.corpus = report["model"], report["corpus"]
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

"""`python -m app names {train,generate,evaluate}`: parse options, call the library, print a summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.core.modelconfig import ModelConfig, TrainConfig
from app.core.options import add_dataclass_args
from app.core.sampling import SamplingOptions
from app.names.generator import GenerateOptions
from app.names.train import PRESETS

DEFAULT_DATA = "data/dinos.txt"
MODEL_HELP = "model folder (default: the shipped models/dinos, found as app/core/paths.py says)"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="names_command", metavar="SUBCOMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a names model on a text file (one name per line)")
    t.add_argument("--data", default=DEFAULT_DATA, help=f"UTF-8 names file (default {DEFAULT_DATA})")
    t.add_argument("--out", required=True, help="model folder to write, e.g. models/mynames")
    t.add_argument("--preset", choices=tuple(PRESETS),
                   help="named settings; default: small below 5,000 distinct names, medium below 20,000, else "
                        "large (app/names/train.py); the flags below override single settings")
    for i, cls in enumerate((ModelConfig, TrainConfig)):
        add_dataclass_args(t, cls, defaults=PRESETS["small"][i], default_label="preset small")
    t.add_argument("--force", action="store_true", help="replace --out if it is an existing model folder")
    t.add_argument("--keep-case", action="store_true", help="do not lower-case the names")
    t.add_argument("--logdir", help="TensorBoard log folder (default runs/<model name>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate names from a model folder")
    g.add_argument("--model", help=MODEL_HELP)
    add_dataclass_args(g, GenerateOptions)
    add_dataclass_args(g, SamplingOptions)
    g.add_argument("--out-dir", default="outputs/names", help="where the .txt goes (default outputs/names)")
    g.add_argument("--no-save", action="store_true", help="print only, write no file")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="held-out NLL (nats/char, bits/char), perplexity and novelty")
    e.add_argument("--model", help=MODEL_HELP)
    e.add_argument("--data", help="names file to score (default: the model's own validation split)")
    e.add_argument("-n", type=int, default=1000, help="samples for the novelty count (default 1000)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="quality report: novelty, lengths, bigram distance at several temperatures")
    r.add_argument("--model", help=MODEL_HELP)
    r.add_argument("-n", type=int, default=1000, help="samples per temperature (default 1000)")
    r.add_argument("--temperatures", default="0.5,0.8,1.0,1.2", help="comma-separated (default 0.5,0.8,1.0,1.2)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out-dir", default="outputs/reports")
    r.add_argument("--update-card", action="store_true", help="add the figures to the model's card.json")
    r.set_defaults(func=cmd_report)


def cmd_train(args) -> int:
    from app.core.options import from_args
    from app.names.codec import read_names
    from app.names.train import resolve_configs, train_names_model

    n_names = len(read_names(args.data, lowercase=not args.keep_case))
    preset, model_base, train_base = resolve_configs(n_names, args.preset)
    model_cfg, train_cfg = from_args(ModelConfig, args, model_base), from_args(TrainConfig, args, train_base)
    from app.core.folder import check_model_destination

    out = check_model_destination(args.out, force=args.force)  # before any work
    log_dir = args.logdir or str(Path("runs") / out.name)
    print(f"training {out} on {args.data} ({n_names} names, preset {preset}): {model_cfg}, {train_cfg}",
          file=sys.stderr)
    from app.core.distribute import cudnn_warning, make_placement

    placement = make_placement(train_cfg.distribute)
    print(placement.describe(), file=sys.stderr)
    warning = cudnn_warning(model_cfg.recurrent_dropout, placement)
    if warning:
        print(warning, file=sys.stderr)
    card = train_names_model(args.data, out, model_cfg, train_cfg, preset=preset, lowercase=not args.keep_case,
                             log_dir=log_dir, progress=not args.quiet, force=args.force,
                             placement=placement)
    m = card["metrics"]
    print(f"saved {out}: {card['data']['train_names']} train / {card['data']['val_names']} validation names, "
          f"{card['epochs_done']} epochs (best {card['best_epoch']}), {card['train_seconds']} s; validation "
          f"{m['validation']['nll_nats_per_char']:.4f} nats/char "
          f"({m['validation']['nll_bits_per_char']:.3f} bits/char, perplexity {m['validation']['perplexity']:.2f})")
    print(f"TensorBoard logs: {log_dir}")
    return 0


def cmd_generate(args) -> int:
    from app.core.options import from_args
    from app.core.outputs import ensure_dir
    from app.names.generator import NameGenerator, write_names

    opts = from_args(GenerateOptions, args, sampling=from_args(SamplingOptions, args))
    out_dir = None if args.no_save else ensure_dir(args.out_dir)  # fail before the work, not after
    gen = NameGenerator.load(args.model)
    result = gen.run(opts)
    train = set(gen.train_names)
    for name in result.names:
        print(f"{name}{'' if name in train else '  (new)'}" if sys.stdout.isatty() else name)
    r = result.report
    summary = f"{r['samples']} names: {r['new']} new, {r['in_train']} in the training data, {r['unique']} unique"
    if out_dir is not None:
        summary += f"; written to {write_names(result.names, out_dir)}"
    print(summary, file=sys.stderr)
    return 0


def cmd_evaluate(args) -> int:
    from app.names.evaluate import evaluate

    report = evaluate(args.model, data=args.data, n_samples=args.n, seed=args.seed)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    v = report["heldout"]
    nov = report["novelty"]
    print(f"model {report['model']}, scored on {report['scored_on']} ({v['tokens']} characters, end-of-name counted)")
    print(f"  held-out NLL  {v['nll_nats_per_char']:.4f} nats/char  {v['nll_bits_per_char']:.4f} bits/char  "
          f"perplexity {v['perplexity']:.3f}")
    print(f"  novelty       {nov['new']}/{nov['samples']} samples new ({100 * nov['new_fraction']:.1f} %), "
          f"{nov['unique']} unique ({100 * nov['unique_fraction']:.1f} %) at temperature 1.0")
    return 0


def cmd_report(args) -> int:
    from app.core.options import parse_temperatures
    from app.names.report import run_report

    temps = parse_temperatures(args.temperatures)
    folder, report = run_report(args.model, args.n, temps, args.seed, args.out_dir, args.update_card)
    for r in report["by_temperature"]:
        print(f"T={r['temperature']}: {r['new']}/{r['samples']} new, {r['unique']} unique, "
              f"bigram JS {r['bigram_js_bits']:.4f} bits (real vs real "
              f"{report['real_vs_real']['bigram_js_bits']:.4f})")
    print(f"report written to {folder}")
    return 0

"""`python -m app names {train,generate,evaluate}`: parse options, call the library, print a summary."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_MODEL = "models/dinos"
DEFAULT_DATA = "data/dinos.txt"


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="names_command", metavar="SUBCOMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train a names model on a text file (one name per line)")
    t.add_argument("--data", default=DEFAULT_DATA, help=f"UTF-8 names file (default {DEFAULT_DATA})")
    t.add_argument("--out", required=True, help="model folder to write, e.g. models/mynames")
    t.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    t.add_argument("--cell", choices=("lstm", "gru"))
    t.add_argument("--units", type=int)
    t.add_argument("--layers", type=int)
    t.add_argument("--dropout", type=float)
    t.add_argument("--recurrent-dropout", type=float)
    t.add_argument("--input", choices=("onehot", "embedding"))
    t.add_argument("--embed-dim", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, dest="learning_rate")
    t.add_argument("--patience", type=int, help="epochs without validation improvement before stopping")
    t.add_argument("--val-fraction", type=float)
    t.add_argument("--seed", type=int, help="split and initialisation seed")
    t.add_argument("--distribute", choices=("auto", "none", "mirrored", "multi-worker"),
                   help="none, mirrored (local GPUs), multi-worker (TF_CONFIG machines); default auto: mirrored "
                        "when more than one GPU is visible, else none. --batch-size is per replica")
    t.add_argument("--keep-case", action="store_true", help="do not lower-case the names")
    t.add_argument("--logdir", help="TensorBoard log folder (default runs/<model name>)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="generate names from a model folder")
    g.add_argument("--model", default=DEFAULT_MODEL, help=f"model folder (default {DEFAULT_MODEL})")
    g.add_argument("-n", type=int, default=10, help="number of names (default 10)")
    g.add_argument("--temperature", type=float, default=1.0, help="> 0; lower is safer, higher is wilder")
    g.add_argument("--top-k", type=int, help="sample among the k most likely characters (1 = greedy)")
    g.add_argument("--top-p", type=float, help="nucleus sampling, 0 < p <= 1")
    g.add_argument("--prefix", default="", help='every name starts with this, e.g. "tyranno"')
    g.add_argument("--suffix", default="", help='every name ends with this, e.g. "saurus"')
    g.add_argument("--contains", default="", help="every name contains this")
    g.add_argument("--min-len", type=int, default=1, help="minimum length in characters (default 1)")
    g.add_argument("--max-len", type=int, default=30, help="maximum length in characters (default 30)")
    g.add_argument("--unique", action="store_true", help="no name twice")
    g.add_argument("--novel-only", action="store_true", help="exclude names found in the training data")
    g.add_argument("--seed", type=int, help="same seed, same names")
    g.add_argument("--out-dir", default="outputs/names", help="where the .txt goes (default outputs/names)")
    g.add_argument("--no-save", action="store_true", help="print only, write no file")
    g.set_defaults(func=cmd_generate)

    e = sub.add_parser("evaluate", help="held-out NLL (nats/char, bits/char), perplexity and novelty")
    e.add_argument("--model", default=DEFAULT_MODEL)
    e.add_argument("--data", help="names file to score (default: the model's own validation split)")
    e.add_argument("-n", type=int, default=1000, help="samples for the novelty count (default 1000)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("report", help="quality report: novelty, lengths, bigram distance at several temperatures")
    r.add_argument("--model", default=DEFAULT_MODEL)
    r.add_argument("-n", type=int, default=1000, help="samples per temperature (default 1000)")
    r.add_argument("--temperatures", default="0.5,0.8,1.0,1.2", help="comma-separated (default 0.5,0.8,1.0,1.2)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out-dir", default="outputs/reports")
    r.add_argument("--update-card", action="store_true", help="add the figures to the model's card.json")
    r.set_defaults(func=cmd_report)


def cmd_train(args) -> int:
    import dataclasses

    from app.core.modelconfig import ModelConfig, TrainConfig
    from app.names.train import DEFAULT_MODEL as M, DEFAULT_TRAIN as T, train_names_model

    def pick(cfg, names):
        return dataclasses.replace(cfg, **{k: getattr(args, k) for k in names if getattr(args, k) is not None})

    model_cfg: ModelConfig = pick(M, ("cell", "units", "layers", "dropout", "recurrent_dropout", "input", "embed_dim"))
    train_cfg: TrainConfig = pick(T, ("epochs", "batch_size", "learning_rate", "patience", "val_fraction", "seed",
                                      "distribute"))
    out = Path(args.out)
    log_dir = args.logdir or str(Path("runs") / out.name)
    print(f"training {out} on {args.data}: {model_cfg}", file=sys.stderr)
    from app.core.distribute import cudnn_warning, make_placement

    placement = make_placement(train_cfg.distribute)
    print(placement.describe(), file=sys.stderr)
    warning = cudnn_warning(model_cfg.recurrent_dropout, placement)
    if warning:
        print(warning, file=sys.stderr)
    card = train_names_model(args.data, out, model_cfg, train_cfg, lowercase=not args.keep_case,
                             log_dir=log_dir, progress=not args.quiet, placement=placement)
    m = card["metrics"]
    print(f"saved {out}: {card['data']['train_names']} train / {card['data']['val_names']} validation names, "
          f"{m['epochs_run']} epochs (best {m['best_epoch']}), {m['train_seconds']} s; validation "
          f"{m['validation']['nll_nats_per_char']:.4f} nats/char "
          f"({m['validation']['nll_bits_per_char']:.3f} bits/char, perplexity {m['validation']['perplexity']:.2f})")
    print(f"TensorBoard logs: {log_dir}")
    return 0


def cmd_generate(args) -> int:
    from app.core.outputs import atomic_write, ensure_dir, timestamp, unique_stem
    from app.names.generator import NameGenerator, make_options

    opts = make_options(n=args.n, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                        prefix=args.prefix, suffix=args.suffix, contains=args.contains, min_len=args.min_len,
                        max_len=args.max_len, unique=args.unique, novel_only=args.novel_only, seed=args.seed)
    out_dir = None if args.no_save else ensure_dir(args.out_dir)  # fail before the work, not after
    gen = NameGenerator.load(args.model)
    result = gen.run(opts)
    train = set(gen.train_names)
    for name in result.names:
        print(f"{name}{'' if name in train else '  (new)'}" if sys.stdout.isatty() else name)
    r = result.report
    summary = f"{r['samples']} names: {r['new']} new, {r['in_train']} in the training data, {r['unique']} unique"
    if out_dir is not None:
        path = unique_stem(out_dir, timestamp(), (".txt",)).with_suffix(".txt")
        atomic_write(path, "\n".join(result.names) + "\n")
        summary += f"; written to {path}"
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
    print(f"model {args.model}, scored on {report['scored_on']} ({v['tokens']} characters, end-of-name counted)")
    print(f"  held-out NLL  {v['nll_nats_per_char']:.4f} nats/char  {v['nll_bits_per_char']:.4f} bits/char  "
          f"perplexity {v['perplexity']:.3f}")
    print(f"  novelty       {nov['new']}/{nov['samples']} samples new ({100 * nov['new_fraction']:.1f} %), "
          f"{nov['unique']} unique ({100 * nov['unique_fraction']:.1f} %) at temperature 1.0")
    return 0


def cmd_report(args) -> int:
    from app.errors import OptionError
    from app.names.report import run_report

    try:
        temps = tuple(float(t) for t in args.temperatures.split(",") if t.strip())
    except ValueError:
        raise OptionError(f"--temperatures must be numbers separated by commas, got {args.temperatures!r}") from None
    folder, report = run_report(args.model, args.n, temps, args.seed, args.out_dir, args.update_card)
    for r in report["by_temperature"]:
        print(f"T={r['temperature']}: {r['new']}/{r['samples']} new, {r['unique']} unique, "
              f"bigram JS {r['bigram_js_bits']:.4f} bits (real vs real "
              f"{report['real_vs_real']['bigram_js_bits']:.4f})")
    print(f"report written to {folder}")
    return 0

"""Held-out NLL of the music archs (and lookback distance sets) trained the same way on the same corpus.

Run: .venv/bin/python bench/archs.py [--corpus data/corpora/default] [--units 128] [--epochs 3]
         [--spec basic --spec lookback:1,2 --spec lookback:1,2,4,8 ...] [--model models/folk ...] [--json out.json]
         [--card models/folk] [--keep DIR]

Each --spec trains one model with `python -m app music train` (the user's command: same corpus, split, seed,
units, epochs and batch for every row; early stopping as configured) into a temporary folder, and reads its card:
validation NLL in nats per step on the resolved tokens (for lookback: the probability of the actual token after its
repeat labels are folded in, comparable with basic). --model adds rows for already-trained folders (e.g. the
shipped model), evaluated on the same corpus. The best interpolated n-gram on the same tokens is the reference row.
Spec syntax: `basic`, `attention`, `lookback:1,2,4,8` (lookback distances in bars), and `+tunes` after a lookback
spec for the rhythm, scale and tonic tune classes (`--tune-classes rhythm,scale,tonic`). A tune-conditioned
model's NLL is given each piece's classes, so its row adds what choosing them costs under its prior
(`nll_with_tune_classes`; the NLL given the classes is kept as `nll_given_tune_classes`). --models-only trains
nothing (only the --model rows).
--card MODEL records the table in MODEL's card.json (key "arch_comparison": the rows, the n-gram, the command and
which row is best), which is how the shipped model's card says why it has its arch.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_SPECS = ("basic", "lookback:1,2", "lookback:4,8", "lookback:1,2,4,8", "lookback:1,2,4,8,16", "attention")


def spec_args(spec: str) -> list[str]:
    spec, tunes, _ = spec.partition("+tunes")
    name, _, lookbacks = spec.partition(":")
    args = ["--arch", name]
    if lookbacks:
        args += ["--lookbacks", lookbacks]
    if tunes:
        args += ["--tune-classes", "rhythm,scale,tonic"]
    return args


def nll_of(v: dict) -> dict:
    """The row's NLL: with the tune classes' cost for a tune-conditioned model (comparable with the others)."""
    if "nll_with_tune_classes" in v:
        return {"nll": v["nll_with_tune_classes"], "nll_given_tune_classes": v["nll_nats_per_step"]}
    return {"nll": v["nll_nats_per_step"]}


def train_row(spec: str, corpus: str, units: int, epochs: int, folder: Path, baselines: bool) -> dict:
    out = folder / spec.replace(":", "_").replace(",", "-").replace("+", "_")
    cmd = [sys.executable, "-m", "app", "music", "train", "--corpus", corpus, "--out", str(out), "--units",
           str(units), "--epochs", str(epochs), "--quiet", "--logdir", str(folder / "logs"), *spec_args(spec)]
    if not baselines:
        cmd.append("--no-baselines")
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    card = json.loads((out / "card.json").read_text())
    v = card["metrics"]["validation"]
    return {"spec": spec, "units": units, "epochs_done": card["epochs_done"], "best_epoch": card["best_epoch"],
            **nll_of(v), "accuracy": v["accuracy"], "steps": v["steps"], "wall_s": round(wall, 1),
            "baselines": card["metrics"].get("baselines")}


def model_row(path: str, corpus: str) -> dict:
    from app.music.train import evaluate_model

    rep = evaluate_model(path, corpus, baselines=False, progress=False)
    cfg = json.loads((Path(path) / "config.json").read_text())
    arch = cfg.get("arch") or {"name": "basic"}
    lb = (arch.get("settings") or {}).get("lookbacks")
    spec = arch["name"] + (":" + ",".join(str(x) for x in lb) if lb else "")
    spec += "+tunes" if (arch.get("settings") or {}).get("tune_classes") else ""
    card = json.loads((Path(path) / "card.json").read_text())
    v = rep["model_metrics"]
    return {"spec": f"{spec} ({path})", "units": cfg["model"]["units"], "epochs_done": card.get("epochs_done"),
            "best_epoch": card.get("best_epoch"), **nll_of(v), "accuracy": v["accuracy"],
            "steps": v["steps"], "wall_s": card.get("train_seconds")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpora/default")
    ap.add_argument("--units", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--spec", action="append", help="arch to train (repeatable; default: %s)" % " ".join(DEFAULT_SPECS))
    ap.add_argument("--model", action="append", default=[], help="an already-trained model folder to evaluate too")
    ap.add_argument("--json", help="also write the rows to this JSON file")
    ap.add_argument("--card", help="record the comparison in this model folder's card.json (arch_comparison)")
    ap.add_argument("--keep", help="train into this new folder and keep the models (default: a temporary folder)")
    ap.add_argument("--models-only", action="store_true", help="train nothing: only the --model rows")
    args = ap.parse_args(argv)
    specs = [] if args.models_only else args.spec if args.spec is not None else list(DEFAULT_SPECS)
    rows, ngram = [], None
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=False)
    with (contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="bench-archs-")
          ) as tmp:
        for k, spec in enumerate(specs):
            print(f"training {spec} (n_a {args.units}, {args.epochs} epochs) ...", flush=True)
            row = train_row(spec, args.corpus, args.units, args.epochs, Path(tmp), baselines=ngram is None)
            ngram = ngram or min(row.pop("baselines") or [], key=lambda b: b["nll"], default=None)
            row.pop("baselines", None)
            rows.append(row)
            print(f"  {spec}: NLL {row['nll']:.4f} nats/step after {row['epochs_done']} epochs, {row['wall_s']} s",
                  flush=True)
    for path in args.model:
        rows.append(model_row(path, args.corpus))
    if ngram is None:
        from app.core.ngram import fit_baselines
        from app.music.corpus import load_corpus

        c = load_corpus(args.corpus)
        ngram = min(fit_baselines(c.train, c.val, c.codec.size), key=lambda b: b["nll"])
    print("\n| model | n_a | epochs (best) | held-out NLL nats/step | vs best n-gram | accuracy | wall s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rel = 100 * (r["nll"] / ngram["nll"] - 1)
        print(f"| {r['spec']} | {r['units']} | {r['epochs_done']} ({r['best_epoch']}) | {r['nll']:.4f} | "
              f"{rel:+.1f} % | {r['accuracy']:.3f} | {r['wall_s']} |")
    print(f"| {ngram['name']} | | | {ngram['nll']:.4f} | | | |")
    result = {"rows": rows, "ngram": ngram, "corpus": args.corpus, "units": args.units, "epochs": args.epochs,
              "command": "python bench/archs.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "best": min(rows, key=lambda r: r["nll"])["spec"] if rows else None,
              "date": time.strftime("%Y-%m-%d", time.gmtime())}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    if args.card:
        from app.core.folder import update_card

        update_card(args.card, "arch_comparison", result)
        print(f"recorded in {args.card}/card.json (arch_comparison)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

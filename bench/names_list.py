"""Names on a big real list: train with the default settings (the preset picked from the data size), then held-out
NLL next to n-gram baselines fitted on the same split.

Run: .venv/bin/python bench/names_list.py [--data data/surnames.txt] [--model DIR | --out DIR] [--json out.json]

With --model the trained folder is scored as it is; otherwise `python -m app names train --data DATA --out OUT`
runs first with no other option (so the preset and every setting are the defaults) and its wall time is measured.
Split: the one the model was trained on (de-duplicated, lower-cased, val_fraction and seed from its config;
checked). NLL is nats per character with the end-of-name token counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.ngram import fit_baselines  # noqa: E402
from app.names.codec import NameCodec, read_names, split_names  # noqa: E402
from app.names.evaluate import heldout_nll  # noqa: E402
from app.names.generator import NameGenerator  # noqa: E402


def train_default(data: Path, out: Path) -> float:
    cmd = [sys.executable, "-m", "app", "names", "train", "--data", str(data), "--out", str(out), "--quiet",
           "--logdir", str(out.parent / "runs")]
    print("$", " ".join(cmd[1:]), file=sys.stderr)
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT / "data" / "surnames.txt"))
    ap.add_argument("--model", help="an already trained folder (skips training)")
    ap.add_argument("--out", help="where to train (default: a temporary folder)")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    wall = None
    if args.model:
        model = Path(args.model)
    else:
        model = Path(args.out or tempfile.mkdtemp(prefix="names-list-")) / "model"
        wall = train_default(Path(args.data), model)
    gen = NameGenerator.load(model)
    card, tcfg = gen.folder.card, gen.folder.config["train"]
    names = read_names(args.data)
    train, val = split_names(names, tcfg["val_fraction"], tcfg["seed"])
    if sorted(gen.val_names) != sorted(val):
        sys.exit(f"{model} was not trained on {args.data} with its recorded split")
    codec = NameCodec.build(names)
    rows = [{"system": r["name"], "nll": r["nll"]} for r in
            fit_baselines([codec.encode(n) for n in train], [codec.encode(n) for n in val], codec.vocab.size)]
    m = heldout_nll(gen, val)
    cfg = gen.folder.model_config
    rows.append({"system": f"LSTM {cfg.units}, preset {card['train'].get('preset')} (defaults)",
                 "nll": m["nll_nats_per_char"]})
    best = min(r["nll"] for r in rows if "gram" in r["system"])
    print(f"## {Path(args.data).name}: {len(names):,} names, {len(train):,} train / {len(val):,} validation "
          f"({m['tokens']:,} characters)\n")
    print("| system | nats/char | bits/char | vs best n-gram |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['nll']:.4f} | {r['nll'] / np.log(2):.4f} | {100 * (r['nll'] / best - 1):+.1f} % |")
    print(f"\ntraining: {card['epochs_done']} epochs (best {card['best_epoch']}), {card['train_seconds']} s in fit"
          + (f", {wall:.0f} s for the whole command" if wall is not None else "")
          + f"; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "card": card, "command_seconds": wall}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

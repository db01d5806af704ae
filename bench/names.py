"""Names benchmark: held-out NLL of baselines vs the shipped model, novelty, and generation speed.

Run: .venv/bin/python bench/names.py [--model models/dinos] [--course-iterations 35000] [--json out.json]

Split: de-duplicated, lower-cased data/dinos.txt, 10 % validation by seed 0 (the split the shipped model was
trained on; checked below). NLL is nats per character with the end-of-name token counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.ngram import fit_baselines  # noqa: E402
from app.names.codec import NameCodec, read_names, split_names  # noqa: E402
from app.names.evaluate import heldout_nll  # noqa: E402
from app.names.generator import NameGenerator, make_options  # noqa: E402


def nll_rows(model_path: Path, course_iterations: int) -> tuple[list[dict], NameGenerator, list[str]]:
    names = read_names(ROOT / "data" / "dinos.txt")
    train, val = split_names(names, 0.1, seed=0)
    gen = NameGenerator.load(model_path)
    if sorted(gen.val_names) != sorted(val):
        sys.exit(f"{model_path} was not trained on the benchmark split (seed 0, 10 %); retrain it")
    codec = NameCodec.build(names)
    rows = fit_baselines([codec.encode(n) for n in train], [codec.encode(n) for n in val], codec.vocab.size)
    rows = [{"system": r["name"], "nll": r["nll"], "chars": r["tokens"]} for r in rows]
    if course_iterations > 0:
        from app.reference.dinos_rnn import heldout_nats_per_char, train_course_rnn

        t0 = time.perf_counter()
        course = train_course_rnn(train, iterations=course_iterations, seed=0)
        rows.append({"system": f"course RNN (numpy, n_a=50, {course_iterations} SGD steps)",
                     "nll": heldout_nats_per_char(course, val), "chars": None,
                     "train_seconds": round(time.perf_counter() - t0, 1)})
    m = heldout_nll(gen, val)
    cfg = gen.folder.model_config
    rows.append({"system": f"shipped Keras model ({cfg.cell.upper()} {cfg.layers}x{cfg.units})",
                 "nll": m["nll_nats_per_char"], "chars": m["tokens"]})
    return rows, gen, train


def speed(gen: NameGenerator, n: int = 10_000, repeats: int = 5) -> dict:
    opts = make_options(n=n, temperature=1.0, seed=0)
    gen.run(make_options(n=100, seed=1))  # warm-up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        gen.run(opts)
        times.append(time.perf_counter() - t0)
    best, med = min(times), statistics.median(times)
    return {"names": n, "best_s": best, "median_s": med, "names_per_s_best": n / best, "names_per_s_median": n / med}


def cold_generate(model: Path, runs: int = 5) -> dict:
    cmd = [sys.executable, "-m", "app", "names", "generate", "--model", str(model), "-n", "10", "--no-save"]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env={**os.environ})
        times.append(time.perf_counter() - t0)
    return {"runs": runs, "median_s": statistics.median(times), "all_s": [round(t, 3) for t in times]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "dinos"))
    ap.add_argument("--course-iterations", type=int, default=35000, help="0 skips the course RNN row")
    ap.add_argument("--json", help="also write the figures here")
    args = ap.parse_args(argv)

    rows, gen, train = nll_rows(Path(args.model), args.course_iterations)
    best_ngram = min(r["nll"] for r in rows if "gram" in r["system"])
    print("## Held-out NLL, dinos.txt (de-duplicated, lower-cased, 10 % validation, seed 0)\n")
    print("| system | nats/char | bits/char | vs best n-gram |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['system']} | {r['nll']:.4f} | {r['nll'] / np.log(2):.4f} | "
              f"{100 * (r['nll'] / best_ngram - 1):+.1f} % |")

    result = gen.run(make_options(n=1000, temperature=1.0, seed=0))
    nov = result.report
    print(f"\n## Novelty at temperature 1.0 (1,000 samples, seed 0)\n\n{nov['new']} new "
          f"({100 * nov['new_fraction']:.1f} %), {nov['in_train']} in training data, {nov['unique']} unique "
          f"({100 * nov['unique_fraction']:.1f} %)")

    sp = speed(gen)
    print(f"\n## Batched generation, {sp['names']:,} names at T = 1.0 (warm, {os.cpu_count()} cores)\n\n"
          f"best {sp['best_s']:.3f} s = {sp['names_per_s_best']:,.0f} names/s; median {sp['median_s']:.3f} s = "
          f"{sp['names_per_s_median']:,.0f} names/s")

    cold = cold_generate(Path(args.model))
    print(f"\n## Cold `python -m app names generate -n 10` (process start to exit), median of {cold['runs']}\n\n"
          f"{cold['median_s']:.3f} s (runs: {cold['all_s']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"nll": rows, "novelty": nov, "speed": sp, "cold": cold}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

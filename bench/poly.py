"""Polyphony benchmark (issue 14): encodings compared, notes kept by mode, and a poly model's acceptance figures.

Run:
  .venv/bin/python bench/poly_folder.py /tmp/poly-midi                        # 17 keyboard / quartet works as MIDI
  .venv/bin/python bench/poly.py kept --source /tmp/poly-midi                 # acceptance 1: poly vs melody mode
  .venv/bin/python bench/poly.py encodings --corpus data/corpora/chorales [--corpus /tmp/pc-poly]
  .venv/bin/python bench/poly.py model --model models/chorales [-n 200] [--seeds 1,2,3]  # acceptance 3, 4, 5

kept       builds the folder in --mode poly and in melody mode (subprocesses, `python -m app music corpus`) and
           prints per file the share of pitched notes each mode keeps (report.json notes_kept).
encodings  decodes every original piece of a poly corpus to notes and encodes it three ways: our step events
           (app/music/polycodec.py), a performance encoding (note-on / note-off per pitch, time shifts of 1..16
           steps) and a REMI-like one (bar every 16 steps, position 0..15, pitch, duration 1..64 steps); prints
           tokens per piece, tokens per note, vocabulary size and the share of pieces each one round-trips exactly.
model      acceptance 3 (held-out NLL vs the best n-gram on the same tokens, from the model card, recomputed with
           app.core.ngram), 4 (n pieces of 16 bars at T=1.0 vs held-out: notes sounding per step, in-scale rate,
           pitch-class JS vs real-vs-real) and 5 (16-bar piece warm; cold `music generate` median of 5).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One BLAS thread: on the shared 2-core machine (load 7.4) OpenBLAS's threads made a batch-64 LSTM step ~9x slower
# (64 pieces of 4 bars: 0.51 s with one thread, 4.46 s with the default; BENCHMARKS.md). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.music.corpus import load_corpus  # noqa: E402
from app.music.polycodec import PolyCodec, canonical  # noqa: E402

SHIFT_MAX, BAR, DUR_MAX = 16, 16, 64


# --- the two other encodings (bench only) ----------------------------------------------------------------------
def performance_encode(notes, steps):
    """[("shift", k) | ("on", p) | ("off", p)]: at each event time, note-offs then note-ons; shifts of <= 16."""
    events = sorted([(e, 0, p) for p, _, e in notes] + [(s, 1, p) for p, s, _ in notes])
    out, t = [], 0
    for when, kind, p in events:
        while when > t:
            k = min(SHIFT_MAX, when - t)
            out.append(("shift", k))
            t += k
        out.append(("on" if kind else "off", p))
    while steps > t:
        k = min(SHIFT_MAX, steps - t)
        out.append(("shift", k))
        t += k
    return out


def performance_decode(tokens):
    notes, open_, t = [], {}, 0
    for kind, v in tokens:
        if kind == "shift":
            t += v
        elif kind == "on":
            open_[v] = t
        elif v in open_:
            notes.append((v, open_.pop(v), t))
    return canonical(notes), t


def remi_encode(notes, steps):
    """[("bar",) | ("pos", k) | ("pitch", p) | ("dur", d)]: a bar token every 16 steps, then per onset step its
    position and each note's pitch and duration (durations above 64 steps cannot be written: clipped)."""
    by_start: dict[int, list] = {}
    for p, s, e in notes:
        by_start.setdefault(s, []).append((p, e - s))
    out = []
    for bar in range((steps + BAR - 1) // BAR):
        out.append(("bar",))
        for pos in range(BAR):
            group = by_start.get(bar * BAR + pos)
            if group:
                out.append(("pos", pos))
                for p, d in sorted(group, reverse=True):
                    out += [("pitch", p), ("dur", min(d, DUR_MAX))]
    return out


def remi_decode(tokens, steps):
    notes, bar, pos, pitch = [], -1, 0, None
    for tok in tokens:
        if tok[0] == "bar":
            bar += 1
        elif tok[0] == "pos":
            pos = tok[1]
        elif tok[0] == "pitch":
            pitch = tok[1]
        else:
            notes.append((pitch, bar * BAR + pos, bar * BAR + pos + tok[1]))
    return canonical(notes), steps


def cmd_encodings(args) -> int:
    for path in args.corpus:
        c = load_corpus(path)
        codec: PolyCodec = c.codec
        P = codec.n_pitches
        rows = {"step events (ours)": [0, 0, codec.size], "performance": [0, 0, 2 * P + SHIFT_MAX],
                "REMI-like": [0, 0, 1 + BAR + P + DUR_MAX]}
        n_pieces = n_notes = 0
        t0 = time.perf_counter()
        for ids, meta in zip(c.train + c.val, c.train_meta + c.val_meta):
            if meta["shift"]:
                continue
            notes, steps = codec.decode_notes(ids)
            n_pieces += 1
            n_notes += len(notes)
            ours = codec.encode(notes, steps)
            rows["step events (ours)"][0] += len(ours)
            rows["step events (ours)"][1] += codec.decode_notes(ours) == (notes, steps) and (ours == ids).all()
            perf = performance_encode(notes, steps)
            rows["performance"][0] += len(perf)
            rows["performance"][1] += performance_decode(perf) == (notes, steps)
            remi = remi_encode(notes, steps)
            rows["REMI-like"][0] += len(remi)
            rows["REMI-like"][1] += remi_decode(remi, steps) == (notes, steps)
        print(f"{path}: {n_pieces} pieces, {n_notes:,} notes ({time.perf_counter() - t0:.1f} s)")
        print(f"  {'encoding':<20} {'tokens/piece':>12} {'tokens/note':>11} {'vocab':>6} {'exact round trip':>17}")
        for name, (tokens, exact, vocab) in rows.items():
            print(f"  {name:<20} {tokens / n_pieces:>12.0f} {tokens / n_notes:>11.2f} {vocab:>6} "
                  f"{exact:>8}/{n_pieces} pieces")
    return 0


# --- notes kept --------------------------------------------------------------------------------------------------
def build(source: str, out: Path, mode: str) -> tuple[dict, float]:
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "app", "music", "corpus", "--source", source, "--out", str(out), "--quiet",
           "--no-cache", "--mode", mode]
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    return json.loads((out / "report.json").read_text()), time.perf_counter() - t0


def cmd_kept(args) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        poly, tp = build(args.source, Path(tmp) / "poly", "poly")
        mel, tm = build(args.source, Path(tmp) / "melody", "melody")
    p, m = poly["notes_kept"], mel["notes_kept"]
    print(f"{args.source}: {p['pitched']:,} pitched notes in {poly['files']['supported']} files")
    print(f"  poly mode:   kept {p['kept']:,} ({100 * p['share']:.1f} %), lowest file {100 * p['lowest_share']:.1f} %,"
          f" {p['unisons_merged']:,} unison doublings merged on the grid, {poly['tokens']:,} tokens, {tp:.1f} s")
    print(f"  melody mode: kept {m['kept']:,} ({100 * m['share']:.1f} %), lowest file {100 * m['lowest_share']:.1f} %,"
          f" {mel['tokens']:,} tokens, {tm:.1f} s")
    shares = {i["source"]: i for i in m["items"]}
    poly_items = {i["source"]: i for i in p["items"]}
    print(f"  {'file':<56} {'notes':>6} {'poly %':>7} {'melody %':>9}  melody track")
    for src in sorted(set(shares) | set(poly_items)):
        mi, pi = shares.get(src), poly_items.get(src)
        n = (pi or mi)["notes"]
        tr = mi.get("track") if mi else None
        label = f"{tr['index']}:{tr['name']}" if isinstance(tr, dict) else str(tr)
        print(f"  {src[-56:]:<56} {n:>6} {100 * (pi['share'] if pi else 1):>7.1f} "
              f"{100 * (mi['share'] if mi else 1):>9.1f}  {label}")
    return 0


# --- a model's acceptance figures ------------------------------------------------------------------------------
def cmd_model(args) -> int:
    from app.core.ngram import fit_baselines
    from app.music.generate import MelodyGenerator
    from app.music.polyreport import build_report
    from app.music.train import evaluate_pieces

    t0 = time.perf_counter()
    gen = MelodyGenerator.load(args.model)
    c = load_corpus(args.corpus or gen.card["data"]["path"])
    val = c.val
    train = [p for p, m in zip(c.train, c.train_meta) if m["shift"] == 0]
    v = evaluate_pieces(gen.stepper, val)
    base = fit_baselines(train, val, gen.folder.vocab.size)
    best = min(base, key=lambda r: r["nll"])
    print(f"acceptance 3: held-out NLL {v['nll_nats_per_step']:.4f} nats/token on {v['steps']:,} tokens of "
          f"{v['pieces']} pieces; best n-gram {best['name']} {best['nll']:.4f}: "
          f"{100 * (1 - v['nll_nats_per_step'] / best['nll']):.1f} % lower (goal >= 15 %)")
    for r in base:
        print(f"    {r['name']:<40} {r['nll']:.4f}")
    rep = build_report(gen, c, n=args.n, temperatures=(1.0,), seed=0, bars=16)
    r, h = rep["by_temperature"][0], rep["heldout"]
    g = r["generated"]
    print(f"acceptance 4 ({args.n} pieces of 16 bars, T=1.0, vs {h['pieces']} held-out pieces):")
    print(f"  notes sounding per step: generated {g['sounding_per_step']:.3f}, held-out {h['sounding_per_step']:.3f}"
          f" (ratio {r['sounding_ratio']:.3f}; goal 0.7..1.3)")
    print(f"  in-scale rate: generated {100 * g['in_scale_rate']:.1f} %, held-out {100 * h['in_scale_rate']:.1f} % "
          f"({r['in_scale_points']:+.1f} points; goal within 5)")
    print(f"  pitch-class JS: generated vs held-out {r['pitch_class_js_bits']:.5f} bits, real vs real (held-out vs "
          f"training) {r['real_vs_real_js_bits']:.5f} (ratio {r['js_ratio']:.2f}; goal <= 1.5)")
    print(f"  chord sizes 1..8+: generated {g['chord_sizes']}, held-out {h['chord_sizes']}")
    print(f"  voice range: generated {g['voice_range']:.1f}, held-out {h['voice_range']:.1f} semitones")
    print(f"  goals: {r['goals']}  ({time.perf_counter() - t0:.1f} s)")
    if args.seeds:  # the same figures for other generation seeds: how much one run of 200 pieces moves
        for s in args.seeds:
            rs = build_report(gen, c, n=args.n, temperatures=(1.0,), seed=s, bars=16)["by_temperature"][0]
            print(f"  seed {s}: sounding ratio {rs['sounding_ratio']:.3f}, in-scale {rs['in_scale_points']:+.1f} "
                  f"points, pitch-class JS {rs['pitch_class_js_bits']:.5f} bits (ratio {rs['js_ratio']:.2f})")
    gen.generate(n=1, bars=16, seed=0)  # warm
    warm = []
    for k in range(5):
        t = time.perf_counter()
        gen.generate(n=1, bars=16, seed=k)
        warm.append(time.perf_counter() - t)
    cold = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(5):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "app", "music", "generate", "--model", args.model, "--seed", str(k),
                            "--out-dir", tmp], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cold.append(time.perf_counter() - t)
    print(f"acceptance 5: 16-bar piece warm median {1000 * statistics.median(warm):.0f} ms (goal <= 1000); cold "
          f"`music generate --model {args.model}` (.mid+.wav+.png) median of 5 {statistics.median(cold):.2f} s "
          f"(goal <= 1.5); load average {os.getloadavg()[0]:.1f}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kept")
    k.add_argument("--source", required=True)
    k.set_defaults(func=cmd_kept)
    e = sub.add_parser("encodings")
    e.add_argument("--corpus", action="append", required=True)
    e.set_defaults(func=cmd_encodings)
    m = sub.add_parser("model")
    m.add_argument("--model", required=True)
    m.add_argument("--corpus")
    m.add_argument("-n", type=int, default=200)
    m.add_argument("--seeds", type=lambda v: [int(x) for x in v.split(",")], default=[],
                   help="also acceptance 4 with these generation seeds, e.g. 1,2,3 (the main row is seed 0)")
    m.set_defaults(func=cmd_model)
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""Music benchmark: one run, the figures side by side (see BENCHMARKS.md).

  1. held-out NLL/step of the shipped model vs unigram, bigram, trigram and interpolated n-gram baselines on the
     same validation pieces and tokens (nats/step; the model's % lower than the best n-gram);
  2. warm generation of a 100-step melody: the fast path (numpy step loop over the exported weights, as
     `music generate` runs it) vs the document's inference model called the course's way,
     inference_model.predict([x0, a0, c0]), at batch 1 and 64 (median of repeated warm calls), with the shipped
     model's weights and with random weights at the course's sizes (n_a 64, n_values 78);
  3. cold `python -m app music generate` (process start -> .mid/.wav/.png written), median of 5, and (once) the
     document path cold (process start -> Keras load, build the inference model, predict, write the .mid);
  4. wall time of the same N training epochs, whole-sequence trainer vs djmodel, same windows and batch;
  2b. the same per arch (basic, lookback, attention: `--archs`, or alone with `--archs-only`): each arch's numpy
     fast path (`generate_ids` at n = 1: the arch's batch-1 runner) vs its own Keras step-by-step inference model
     (predict, batch 1, 100 steps), random weights at a small (n_a 64) and a medium (n_a 256) size, plus lookback
     1,2,4,8 (the shipped models/folk's setting) at n_a 256, n_values 51 (the folk vocabulary); the batched stepper
     loop at batch 1 (what n = 1 ran before the runners) is timed beside it;
  5. retraining as a user would: >= 200 Bach chorale soprano lines written as MIDI files -> `music corpus` ->
     `music train --from models/folk --epochs 2` -> `music generate`, with the held-out NLL before and after.

Usage: .venv/bin/python bench/music.py [--model models/folk] [--corpus data/corpora/default] [--skip-retrain]
           [--chorales 220] [--epochs 2] [--json out.json] [--archs | --archs-only | --cold-only]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def write_chorale_midis(folder: str | Path, limit: int = 220, offset: int = 0) -> list[Path]:
    """Write the soprano line (first part) of music21's Bach chorales as MIDI files, one per chorale.

    The Bach chorales are not in the default corpus (O'Neill, Aird, Ryan: folk tunes). Only 4-part .mxl
    chorales are used. Returns the written paths."""
    import warnings

    from music21 import corpus

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    paths = sorted((p for p in corpus.getComposer("bach") if p.suffix == ".mxl"), key=lambda p: p.name)
    for p in paths[offset:]:
        if len(written) >= limit:
            break
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                score = corpus.parse(p)
            except Exception:  # a file music21 cannot parse is simply not used
                continue
            if len(score.parts) != 4:
                continue
            out = folder / f"{p.stem.replace('.', '_')}_soprano.mid"
            score.parts[0].write("midi", fp=str(out))
        written.append(out)
    return written


def times(fn, repeats: int) -> list[float]:
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return ts


# --- 1. NLL ------------------------------------------------------------------------------------------------------
def bench_nll(model: str, corpus: str) -> dict:
    from app.music.train import evaluate_model

    t = time.perf_counter()
    rep = evaluate_model(model, corpus)
    m = rep["model_metrics"]["nll_nats_per_step"]
    best = min(r["nll"] for r in rep["baselines"])
    rep["improvement_vs_best_ngram"] = 1 - m / best
    rep["seconds"] = time.perf_counter() - t
    return rep


# --- 2. warm generation --------------------------------------------------------------------------------------------
FAST_TIMING = r"""
import json, statistics, sys, time, numpy as np
from app.core.modelconfig import ModelConfig
from app.core.sampling import SamplingOptions
from app.core.stepper import NumpyStepper
from app.music.sampler import MelodyOptions, generate_ids
with np.load(sys.argv[1]) as z:
    w = {k: z[k] for k in z.files}
units, V, steps = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
st = NumpyStepper(w, ModelConfig(units=units), V)
out = {}
for batch in (1, 64):
    opts = MelodyOptions(n=batch, steps=steps, sampling=SamplingOptions(greedy=True))
    ids = generate_ids(st, np.full(V, -1), opts)
    ts = []
    for _ in range(21):
        t = time.perf_counter(); generate_ids(st, np.full(V, -1), opts); ts.append(time.perf_counter() - t)
    out[batch] = {"ms": 1e3 * statistics.median(ts), "min_ms": 1e3 * min(ts), "ids": ids.tolist()}
assert "tensorflow" not in sys.modules
print(json.dumps(out))
"""


def bench_generation(weights: dict, cfg, n_values: int, steps: int = 100, label: str = "") -> list[dict]:
    """The fast path is timed in its own process, as `music generate` runs it (numpy only, TensorFlow never
    imported: a process that has run TensorFlow also has its thread pools competing with numpy's BLAS)."""
    from app.music import models as M

    with tempfile.TemporaryDirectory() as tmp:
        np.savez(Path(tmp) / "w.npz", **weights)
        p = subprocess.run([sys.executable, "-c", FAST_TIMING, str(Path(tmp) / "w.npz"), str(cfg.units),
                            str(n_values), str(steps)], cwd=ROOT, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-3000:])
        fast = json.loads(p.stdout)
    _, cell, densor = M.build_doc_layers(weights, cfg, n_values)
    t = time.perf_counter()
    inf = M.music_inference_model(cell, densor, Ty=steps)
    build_s = time.perf_counter() - t
    rows = []
    for batch in (1, 64):
        x0 = np.zeros((batch, 1, n_values), np.float32)
        a0 = np.zeros((batch, cfg.units), np.float32)
        c0 = np.zeros((batch, cfg.units), np.float32)
        t = time.perf_counter()
        doc = inf.predict([x0, a0, c0], verbose=0)
        first_s = time.perf_counter() - t
        doc_ts = times(lambda: inf.predict([x0, a0, c0], verbose=0), 9)
        doc_s = statistics.median(doc_ts)
        fast_ms = fast[str(batch)]["ms"]
        same = np.array_equal(np.stack(doc, 1).argmax(-1), np.array(fast[str(batch)]["ids"]))
        rows.append({"weights": label, "batch": batch, "steps": steps, "doc_predict_ms": 1e3 * doc_s,
                     "doc_first_call_s": first_s, "doc_build_s": build_s, "fast_numpy_ms": fast_ms,
                     "speedup": 1e3 * doc_s / fast_ms, "doc_predict_min_ms": 1e3 * min(doc_ts),
                     "fast_numpy_min_ms": fast[str(batch)]["min_ms"],
                     "speedup_of_minima": 1e3 * min(doc_ts) / fast[str(batch)]["min_ms"],
                     "same_argmax_sequences": bool(same)})
    return rows


# --- 2b. per arch ------------------------------------------------------------------------------------------------
ARCH_TIMING = r"""
import json, statistics, sys, time, numpy as np
from app.core.modelconfig import ModelConfig
from app.core.sampling import SamplingOptions, sample_next
from app.music.archs.base import get_arch
from app.music.sampler import MelodyOptions, generate_ids, prime
spec = json.loads(sys.argv[2])
with np.load(sys.argv[1]) as z:
    w = {k: z[k] for k in z.files}
arch = get_arch(spec["arch"])
settings = arch.make_settings(spec["settings"])
V, steps = spec["V"], spec["steps"]
st = arch.numpy().make_stepper(w, ModelConfig(units=spec["units"]), settings, V, time_signature=(4, 4))
opts = MelodyOptions(n=1, steps=steps, sampling=SamplingOptions(greedy=True))
def batched():  # the batched loop (stepper.step + sample_next) at batch 1, as generate_ids ran n = 1 before runners
    state, logits = prime(st, np.zeros(0, np.int32), 1)
    out = []
    for t in range(steps):
        x = sample_next(logits, None, opts.sampling)
        out.append(int(x[0]))
        if t + 1 < steps:
            logits, state = st.step(x, state)
    return out
def products():  # the matrix products one runner step makes, as it makes them (the weights it reads per step)
    from functools import partial
    from app.core.runner import runner_for
    r = runner_for(st)
    if hasattr(r, "m1"):  # attention: [h, a, 1] @ m1, [o, 1] @ m2, h @ query
        u = st.units
        q = np.empty(st.query.shape[1], np.float32)
        return [*r.products, partial(np.dot, r.ha[:u], st.query, q)], [r.m1, r.m2, st.query]
    if hasattr(r, "mats"):  # basic: one [h, 1] @ [U | next] per layer
        return r.products, r.mats
    return [r.mat_product], [r.mat]  # lookback
prods, mats = products()
def products_100():
    for _ in range(steps):
        for p in prods:
            p()
ids = generate_ids(st, np.full(V, -1), opts)
same = ids[0].tolist() == batched()
ts, tb = [], []
for _ in range(21):
    t = time.perf_counter(); generate_ids(st, np.full(V, -1), opts); ts.append(time.perf_counter() - t)
for _ in range(7):
    t = time.perf_counter(); batched(); tb.append(time.perf_counter() - t)
tp = []
for _ in range(21):
    t = time.perf_counter(); products_100(); tp.append(time.perf_counter() - t)
assert "tensorflow" not in sys.modules
print(json.dumps({"ms": 1e3 * statistics.median(ts), "min_ms": 1e3 * min(ts), "ids": ids[0].tolist(),
                  "batched_ms": 1e3 * statistics.median(tb), "same_as_batched": same,
                  "products_ms": 1e3 * statistics.median(tp),
                  "weights_kib_per_step": sum(m.nbytes for m in mats) / 1024}))
"""

# (arch, settings, sizes): random weights at a small (n_a 64) and a medium (n_a 256) size; lookback 1,2,4,8 is the
# shipped models/folk's setting
ARCH_ROWS = [("basic", {}, ("small", "medium")), ("lookback", {"lookbacks": [1, 2]}, ("small", "medium")),
             ("lookback", {"lookbacks": [1, 2, 4, 8]}, ("medium",)),
             ("attention", {"attn_length": 64, "attn_dim": 64}, ("small", "medium"))]
SIZES = {"small": 64, "medium": 256}


def bench_archs(V: int = 51, steps: int = 100, archs=None) -> list[dict]:
    """Per arch and size (ARCH_ROWS): numpy fast path (`generate_ids`, n = 1, greedy, in its own TensorFlow-free
    process; also the batched stepper loop at batch 1 for comparison) vs the arch's Keras inference model
    (predict at batch 1, median of 9 warm calls), random weights (normal, sd 0.3)."""
    import keras

    from app.core.modelconfig import ModelConfig
    from app.music.archs.base import get_arch

    rows = []
    for name, arch_settings, sizes in ARCH_ROWS:
        if archs and name not in archs:
            continue
        arch = get_arch(name)
        settings = arch.make_settings(arch_settings)
        for size in sizes:
            units = SIZES[size]
            cfg = ModelConfig(units=units)
            trainer = arch.keras().build_trainer(cfg, settings, V, seed=0)
            rng = np.random.default_rng(0)
            for layer in trainer.layers:
                layer.set_weights([rng.normal(0, 0.3, w.shape).astype(np.float32) for w in layer.get_weights()])
            weights = arch.keras().export_weights(trainer, cfg)
            spec = {"arch": name, "settings": arch_settings, "V": V, "steps": steps, "units": units}
            with tempfile.TemporaryDirectory() as tmp:
                np.savez(Path(tmp) / "w.npz", **weights)
                p = subprocess.run([sys.executable, "-c", ARCH_TIMING, str(Path(tmp) / "w.npz"), json.dumps(spec)],
                                   cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
                if p.returncode != 0:
                    raise RuntimeError(p.stderr[-3000:])
                fast = json.loads(p.stdout)
            t = time.perf_counter()
            inf = arch.keras().inference_model(weights, cfg, settings, V, Ty=steps, time_signature=(4, 4))
            build_s = time.perf_counter() - t
            inputs = [np.zeros((1, 1, V), np.float32), np.zeros((1, units), np.float32),
                      np.zeros((1, units), np.float32)]
            if name != "basic":
                ctx = settings.context(4)
                _, pos, cls = ctx.grid(steps, [(0, 4, 4)])
                inputs.append(ctx.rows(pos, cls)[None])
            t = time.perf_counter()
            doc = inf.predict(inputs, verbose=0)
            first_s = time.perf_counter() - t
            doc_ts = times(lambda: inf.predict(inputs, verbose=0), 9)
            probs = np.stack(doc, 1)[0]  # (steps, V)
            same = np.array_equal(probs.argmax(-1), np.array(fast["ids"]))
            # where the sequences part, how close Keras's two best tokens were (a near-tie that float rounding flips)
            differ = np.flatnonzero(probs.argmax(-1) != np.array(fast["ids"]))
            top2 = np.sort(probs[differ[0]])[-2:] if differ.size else None
            label = ",".join(str(v) for v in arch_settings.get("lookbacks", []))
            rows.append({"arch": name, "settings": arch_settings, "label": label, "size": size, "units": units,
                         "n_values": V, "steps": steps,
                         "keras_predict_ms": 1e3 * statistics.median(doc_ts), "keras_min_ms": 1e3 * min(doc_ts),
                         "numpy_ms": fast["ms"], "numpy_min_ms": fast["min_ms"],
                         "numpy_batched_ms": fast["batched_ms"], "products_ms": fast["products_ms"],
                         "weights_kib_per_step": fast["weights_kib_per_step"],
                         "ceiling": 1e3 * statistics.median(doc_ts) / fast["products_ms"],
                         "speedup": 1e3 * statistics.median(doc_ts) / fast["ms"],
                         "speedup_of_minima": 1e3 * min(doc_ts) / fast["min_ms"],
                         "keras_build_s": build_s, "keras_first_predict_s": first_s,
                         "same_argmax_sequence": bool(same), "same_as_batched": fast["same_as_batched"],
                         "first_difference_step": int(differ[0]) if differ.size else None,
                         "keras_top2_gap_there": float(top2[1] - top2[0]) if differ.size else None})
            keras.backend.clear_session()
    return rows


def print_arch_rows(rows: list[dict]) -> None:
    for r in rows:
        name = r["arch"] + (f" {r['label']}" if r.get("label") else "")
        print(f"  {name:<18} {r['size']:<6} (n_a {r['units']:>3}): Keras predict {r['keras_predict_ms']:7.1f} ms"
              f"   numpy {r['numpy_ms']:5.2f} ms   x{r['speedup']:.0f}   (minima {r['keras_min_ms']:.1f} / "
              f"{r['numpy_min_ms']:.2f} ms, x{r['speedup_of_minima']:.0f}; batched stepper loop "
              f"{r['numpy_batched_ms']:.2f} ms; build {r['keras_build_s']:.1f} s; same argmax sequence: "
              f"{r['same_argmax_sequence']}, as the batched loop: {r['same_as_batched']})")
        print(f"      its matrix products alone ({r['weights_kib_per_step']:.0f} KiB of weights per step): "
              f"{r['products_ms']:.2f} ms per 100 steps, so no numpy loop can beat x{r['ceiling']:.0f} here")
        if not r["same_argmax_sequence"]:
            print(f"      the sequences part at step {r['first_difference_step']}, where Keras's two best tokens are "
                  f"{r['keras_top2_gap_there']:.1e} apart in probability")


# --- 3. cold generate ----------------------------------------------------------------------------------------------
DOC_COLD = r"""
import sys, time, numpy as np
t0 = float(sys.argv[1]); model = sys.argv[2]; out = sys.argv[3]
from app.core.folder import load_model_folder
from app.music.codec import MelodyCodec
from app.music.midi_io import write_midi
from app.music import models as M
f = load_model_folder(model, domain="music")
km = f.keras_model()  # model.keras, safe_mode on
from app.core.model import export_weights
_, cell, densor = M.build_doc_layers(export_weights(km, f.model_config), f.model_config, f.vocab.size)
inf = M.music_inference_model(cell, densor, Ty=96)
V, n_a = f.vocab.size, f.model_config.units
outs = inf.predict([np.zeros((1, 1, V), np.float32), np.zeros((1, n_a), np.float32), np.zeros((1, n_a), np.float32)],
                   verbose=0)
ids = np.stack(outs, 1).argmax(-1)[0]
codec = MelodyCodec.from_vocab(f.vocab)
write_midi(codec.decode(ids), out)
print(time.time() - t0)
"""


def bench_cold(model: str, runs: int = 5, doc: bool = True) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(runs):
            out = Path(tmp) / f"run{k}"
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-m", "app", "music", "generate", "--model", model, "--bars", "8",
                                "--seed", str(k), "--formats", "mid,wav,png", "--out-dir", str(out)], cwd=ROOT,
                               env=env, capture_output=True, text=True)
            times.append(time.perf_counter() - t)
            if p.returncode != 0:
                raise RuntimeError(p.stderr)
            assert sorted(f.suffix for f in out.iterdir()) == [".mid", ".png", ".wav"]
        res = {"generate_cold_s": times, "generate_cold_median_s": statistics.median(times)}
        # the default formats (scores included: .abc and the engraved .svg for melodies)
        t_def = []
        for k in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "app", "music", "generate", "--model", model, "--bars", "8",
                            "--seed", str(k), "--out-dir", str(Path(tmp) / f"def{k}")],
                           cwd=ROOT, env=env, capture_output=True, check=True)
            t_def.append(time.perf_counter() - t)
        res["generate_default_formats_cold_median_s"] = statistics.median(t_def)
        # the same without the WAV and PNG (model + sampling + .mid only)
        t_mid = []
        for k in range(runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "app", "music", "generate", "--model", model, "--bars", "8",
                            "--seed", str(k), "--no-wav", "--no-png", "--out-dir", str(Path(tmp) / f"mid{k}")],
                           cwd=ROOT, env=env, capture_output=True, check=True)
            t_mid.append(time.perf_counter() - t)
        res["generate_mid_only_cold_median_s"] = statistics.median(t_mid)
        if doc:
            t = time.perf_counter()
            p = subprocess.run([sys.executable, "-c", DOC_COLD, str(time.time()), model, str(Path(tmp) / "doc.mid")],
                               cwd=ROOT, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                raise RuntimeError(p.stderr[-3000:])
            res["document_path_cold_s"] = time.perf_counter() - t
    return res


# --- 4. training epochs --------------------------------------------------------------------------------------------
def bench_training(corpus: str, epochs: int = 3, n_a: int = 64, tx: int = 50, windows: int = 4096,
                   batch: int = 64) -> dict:
    import keras

    from app.core.model import build_model
    from app.core.modelconfig import ModelConfig, TrainConfig
    from app.core.train import compile_model
    from app.music import models as M
    from app.music.corpus import load_corpus

    c = load_corpus(corpus)
    x, y = c.window_ids(tx, stride=tx)
    rng = np.random.default_rng(0)
    pick = rng.permutation(len(x))[:windows]
    x, y = x[pick], y[pick]
    x = x.copy()
    x[:, 0] = -1  # the course's x0
    V = c.vocab.size
    # whole-sequence trainer (the fast form: LSTM(return_sequences=True) + Dense on ids)
    cfg = ModelConfig(cell="lstm", units=n_a, layers=1, input="onehot")
    fast = build_model(cfg, V, seed=0)
    compile_model(fast, TrainConfig(batch_size=batch, learning_rate=0.01), len(x) // batch)
    t = time.perf_counter()
    hf = fast.fit(x, y, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    fast_s = time.perf_counter() - t
    # the document's djmodel
    keras.utils.set_random_seed(0)
    dj = M.djmodel(tx, n_a, V)
    M.compile_djmodel(dj)
    inputs, targets = M.doc_inputs(x, V, n_a), M.doc_targets(y, V)
    t = time.perf_counter()
    hd = dj.fit(inputs, targets, batch_size=batch, epochs=epochs, verbose=0, shuffle=True)
    dj_s = time.perf_counter() - t
    return {"epochs": epochs, "windows": len(x), "tx": tx, "n_a": n_a, "batch": batch,
            "whole_sequence_s": fast_s, "djmodel_s": dj_s, "speedup": dj_s / fast_s,
            "whole_sequence_final_loss": hf.history["loss"][-1],
            "djmodel_final_loss_sum_over_steps": hd.history["loss"][-1]}


# --- 5. retraining -------------------------------------------------------------------------------------------------
def bench_retrain(model: str, chorales: int, epochs: int) -> dict:
    from app.music.train import evaluate_model

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    tmp = Path(tempfile.mkdtemp(prefix="bench_music_"))
    res: dict = {"folder": str(tmp)}
    t = time.perf_counter()
    files = write_chorale_midis(tmp / "chorales", limit=chorales)
    res["midi_files"], res["write_midis_s"] = len(files), time.perf_counter() - t

    def run(*args):
        t = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "app", "music", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{args}: {p.stderr[-3000:]}")
        return time.perf_counter() - t

    res["corpus_s"] = run("corpus", "--source", str(tmp / "chorales"), "--out", str(tmp / "corpus"), "--quiet")
    res["before"] = evaluate_model(model, tmp / "corpus", baselines=True)
    res["train_s"] = run("train", "--corpus", str(tmp / "corpus"), "--from", model, "--epochs", str(epochs),
                         "--out", str(tmp / "bach"), "--quiet", "--no-baselines", "--logdir", str(tmp / "tb"))
    res["after"] = evaluate_model(tmp / "bach", tmp / "corpus", baselines=False)
    res["generate_s"] = run("generate", "--model", str(tmp / "bach"), "-n", "3", "--bars", "8", "--seed", "1",
                            "--out-dir", str(tmp / "out"))
    res["outputs"] = sorted(p.name for p in (tmp / "out").iterdir())
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/folk")
    ap.add_argument("--corpus", default="data/corpora/default")
    ap.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs in the retraining part")
    ap.add_argument("--train-epochs", type=int, default=3, help="epochs in the trainer comparison")
    ap.add_argument("--chorales", type=int, default=220)
    ap.add_argument("--skip-retrain", action="store_true")
    ap.add_argument("--json", help="also write all figures to this JSON file")
    ap.add_argument("--archs", action="store_true", help="also time every arch's fast path vs its Keras model")
    ap.add_argument("--archs-only", action="store_true", help="only the per-arch timing (part 2b)")
    ap.add_argument("--cold-only", action="store_true", help="only cold `music generate` (part 3) of --model")
    args = ap.parse_args(argv)
    os.chdir(ROOT)
    out: dict = {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()}
    if args.archs_only:
        print("== 2b. per arch: warm generation of a 100-step melody (greedy, batch 1), numpy vs Keras predict")
        out["archs"] = bench_archs()
        print_arch_rows(out["archs"])
        return finish(out, args.json)
    if args.cold_only:
        print(f"== 3. cold `music generate` of {args.model} (process start -> files written)")
        out["cold"] = bench_cold(args.model, doc=is_basic(args.model))
        print_cold(out["cold"])
        return finish(out, args.json)

    print("== 1. held-out NLL (nats/step) on the validation pieces of", args.corpus)
    nll = bench_nll(args.model, args.corpus)
    out["nll"] = nll
    m = nll["model_metrics"]
    print(f"  {'model ' + args.model:<44} {m['nll_nats_per_step']:.4f}  ppl {m['perplexity']:.3f}  "
          f"acc {m['accuracy']:.3f}  ({m['steps']} steps, {m['pieces']} pieces)")
    for r in nll["baselines"]:
        print(f"  {r['name']:<44} {r['nll']:.4f}  ppl {np.exp(r['nll']):.3f}")
    print(f"  model vs best n-gram: {100 * nll['improvement_vs_best_ngram']:.1f} % lower (goal >= 15 %)")

    print("== 2. warm generation of a 100-step melody (greedy), median of warm calls (9 predict, 21 numpy)")
    from app.core.folder import load_model_folder
    from app.core.modelconfig import ModelConfig

    f = load_model_folder(args.model, domain="music")
    rows = []
    if is_basic(args.model):  # another arch's fast path vs its own Keras model is part 2b
        rows = bench_generation(f.weights, f.model_config, f.vocab.size,
                                label=f"shipped (n_a {f.model_config.units}, n_values {f.vocab.size})")
    rng = np.random.default_rng(0)
    cfg = ModelConfig(units=64)
    rand = {"rnn_0/kernel": rng.normal(0, 0.3, (78, 256)), "rnn_0/recurrent_kernel": rng.normal(0, 0.3, (64, 256)),
            "rnn_0/bias": np.zeros(256), "head/kernel": rng.normal(0, 0.3, (64, 78)), "head/bias": np.zeros(78)}
    rand = {k: v.astype(np.float32) for k, v in rand.items()}
    rows += bench_generation(rand, cfg, 78, label="random (n_a 64, n_values 78)")
    out["generation"] = rows
    for r in rows:
        print(f"  {r['weights']:<34} batch {r['batch']:>2}: predict {r['doc_predict_ms']:8.1f} ms   numpy "
              f"{r['fast_numpy_ms']:6.2f} ms   x{r['speedup']:.0f}   (minima {r['doc_predict_min_ms']:.1f} / "
              f"{r['fast_numpy_min_ms']:.2f} ms, x{r['speedup_of_minima']:.0f}; first predict {r['doc_first_call_s']:.1f} s, "
              f"build {r['doc_build_s']:.1f} s; same argmax sequences: {r['same_argmax_sequences']})")

    if args.archs:
        print("== 2b. per arch: warm generation of a 100-step melody (greedy, batch 1), numpy vs Keras predict")
        out["archs"] = bench_archs()
        print_arch_rows(out["archs"])

    print("== 3. cold `music generate` (process start -> files written)")
    out["cold"] = bench_cold(args.model, doc=is_basic(args.model))
    print_cold(out["cold"])

    print(f"== 4. {args.train_epochs} training epochs, whole-sequence trainer vs djmodel")
    tr = bench_training(args.corpus, epochs=args.train_epochs)
    out["training"] = tr
    print(f"  {tr['windows']} windows of Tx {tr['tx']}, n_a {tr['n_a']}, batch {tr['batch']}: whole-sequence "
          f"{tr['whole_sequence_s']:.1f} s, djmodel {tr['djmodel_s']:.1f} s  (x{tr['speedup']:.1f})")

    if not args.skip_retrain:
        print(f"== 5. retraining on {args.chorales} Bach chorale MIDI files (fine-tune {args.model}, "
              f"{args.epochs} epochs)")
        rt = bench_retrain(args.model, args.chorales, args.epochs)
        out["retrain"] = rt
        b, a = rt["before"]["model_metrics"], rt["after"]["model_metrics"]
        best = min(r["nll"] for r in rt["before"]["baselines"])
        print(f"  {rt['midi_files']} MIDI files written in {rt['write_midis_s']:.0f} s; corpus {rt['corpus_s']:.0f} s; "
              f"fine-tune {rt['train_s']:.0f} s; generate {rt['generate_s']:.1f} s -> {len(rt['outputs'])} files")
        print(f"  chorale validation NLL/step: folk {b['nll_nats_per_step']:.4f} -> fine-tuned "
              f"{a['nll_nats_per_step']:.4f} (best n-gram trained on the chorales {best:.4f})")
    return finish(out, args.json)


def is_basic(model: str) -> bool:
    """Whether the model folder is the document's basic arch on melodies (the document path of parts 2 and 3 is
    basic melody models only)."""
    from app.core.folder import load_model_folder
    from app.music.archs.base import folder_arch

    config = load_model_folder(model, domain="music").config
    return folder_arch(config)[0].name == "basic" and config.get("codec", {}).get("mode", "melody") != "poly"


def print_cold(cold: dict) -> None:
    print(f"  .mid+.wav+.png: median {cold['generate_cold_median_s']:.2f} s of "
          f"{', '.join(f'{t:.2f}' for t in cold['generate_cold_s'])}")
    print(f"  .mid only: median {cold['generate_mid_only_cold_median_s']:.2f} s")
    if "generate_default_formats_cold_median_s" in cold:
        print(f"  default formats (scores too): median {cold['generate_default_formats_cold_median_s']:.2f} s")
    if "document_path_cold_s" in cold:
        print(f"  document path (Keras load + inference model + predict + .mid), once: "
              f"{cold['document_path_cold_s']:.1f} s")


def finish(out: dict, json_path: str | None) -> int:
    """Print the load average next to the figures (a shared machine skews them) and write --json."""
    out["load_avg_end"] = os.getloadavg()
    print(f"load average at start {out['load_avg_start'][0]:.1f}, at end {out['load_avg_end'][0]:.1f} "
          f"({out['cpus']} CPUs)")
    if json_path:
        Path(json_path).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Training at scale (issue 11): streamed vs in-memory corpora, 1 vs 2 local workers, and a Lakh-size estimate.

  1. memory: one epoch of a small melody model (units 64, tx 256, batch 64) on
       a) the default corpus, in memory (today's path), and
       b) a shard folder of >= 10x its tokens (the default corpus transposed -6..+6: `music shard --augment 6`),
          streamed with tf.data;
     each in its own process: peak RSS (ru_maxrss), training tokens per second (real tokens of batches 1..n-1 /
     time from the end of batch 0, which includes tracing, to the end of the last batch; validation excluded).
  2. workers: tokens/s of one epoch on the default corpus with --distribute none (one process) vs multi-worker with
     2 local worker processes (TF_CONFIG on localhost, gRPC; global batch 64 in both).
  3. a paper estimate of one epoch on a Lakh-size corpus (~170,000 MIDI files) on 1 and 8 GPUs: the measured
     part (tokens per piece of our corpus, CPU tokens/s of the shipped model size, units 256), the computed part
     (FLOPs per token) and the assumed part (tokens per Lakh file, GPU time-step latency, scaling efficiency) are
     printed separately.

Usage: .venv/bin/python bench/train_scale.py [--corpus data/corpora/default] [--shards data/corpora/default-x13]
           [--units 64] [--skip-workers] [--json out.json]
       .venv/bin/python bench/train_scale.py one --corpus C --units 64 [--distribute multi-worker]  (one run, JSON)
The shard folder is written first when missing (`python -m app music shard --augment 6 --shards 16`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LAKH_FILES = 170_000
ASSUMED_LAKH_MELODY_STEPS = 1_700  # assumption: a ~3.5 min song at 120 qpm, 4 steps per quarter: 420 quarters x 4
# Assumptions for the GPU estimate (nothing here was measured on a GPU; this machine has none). A small LSTM on a GPU
# is latency-bound: the cuDNN kernel runs the tx time steps one after another, forward then backward, each step a
# few small matrix products. Assumed 20 microseconds per time step (forward + backward together 2 x tx steps per
# batch); tokens/s = batch / (2 x latency). The FLOP rate this implies is checked against the GPU's peak below.
ASSUMED_STEP_LATENCY_S = 20e-6
ASSUMED_GPU_BATCH = 64  # per GPU (the CLI's --batch-size is per replica)
ASSUMED_GPU_PEAK_FLOPS = 50e12  # assumption: dense fp32/TF32 throughput of one current data-centre GPU, order only
ASSUMED_SCALING_8 = 0.85  # assumption: all-reduce efficiency of 8 GPUs on one machine (NVLink)


def lstm_train_flops_per_token(units: int, vocab: int) -> float:
    """Multiply-adds x2 of one LSTM step on a one-hot input plus the dense head, x3 for forward + backward."""
    forward = 2 * 4 * units * (vocab + units) + 2 * units * vocab
    return 3.0 * forward


def one_run(corpus: str, units: int, distribute: str, batch: int, tx: int) -> dict:
    """Train one epoch; return tokens/s of the training batches, peak RSS and facts about the data."""
    import keras

    from app.core.modelconfig import ModelConfig, TrainConfig
    from app.music.train import load_music_data, train_music

    data = load_music_data(corpus)
    tokens = data.stream.train_tokens if data.stream is not None else int(sum(len(p) for p in data.train))
    times: dict[str, float] = {}

    class Clock(keras.callbacks.Callback):  # from the end of batch 0 (tracing excluded) to the last batch's end
        def on_train_batch_end(self, batch, logs=None):
            times.setdefault("first", time.perf_counter())
            times["last"] = time.perf_counter()
            times["batches"] = batch + 1

    with tempfile.TemporaryDirectory() as tmp:
        card = train_music(data, Path(tmp) / "m", ModelConfig(units=units),
                           TrainConfig(epochs=1, batch_size=batch, distribute=distribute, seed=0), tx=tx,
                           progress=False, baselines=False, hooks=[Clock()])
    seconds = times["last"] - times["first"]
    timed_tokens = tokens * (times["batches"] - 1) / times["batches"]  # batches 1.. (pieces are shuffled evenly)
    return {"corpus": corpus, "streamed": data.stream is not None, "distribute": distribute,
            "replicas": card["distribute"]["replicas"], "units": units, "batch_per_replica": batch, "tx": tx,
            "train_tokens": tokens, "train_pieces": card["corpus"]["train_pieces"], "batches": times["batches"],
            "timed_seconds": round(seconds, 2), "tokens_per_s": round(timed_tokens / seconds),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "val_nll": card["metrics"]["validation"]["nll_nats_per_step"], "vocab": data.vocab.size}


def run_child(args: list[str], env: dict | None = None) -> dict:
    r = subprocess.run([sys.executable, __file__, "one", *args], capture_output=True, text=True, cwd=ROOT,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"bench child failed: {' '.join(args)}\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def two_workers(corpus: str, units: int, batch: int, tx: int) -> list[dict]:
    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for i in range(2):
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, __file__, "one", "--corpus", corpus, "--units", str(units),
                                       "--distribute", "multi-worker", "--batch", str(batch), "--tx", str(tx)],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=3600)
        if p.returncode != 0:
            raise SystemExit(f"worker failed\n{stderr[-3000:]}")
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def lakh_estimate(corpus_report: dict, cpu_tps_units256: float | None, cpu_tps_units64: float | None) -> dict:
    """Epoch time of a Lakh-size corpus from measured tokens per piece and CPU speed plus the stated assumptions."""
    pieces_read = corpus_report["pieces"]["read"]
    tokens = corpus_report["tokens"]
    per_piece = tokens / max(1, pieces_read)
    gpu_tps = ASSUMED_GPU_BATCH / (2 * ASSUMED_STEP_LATENCY_S)
    flops256 = lstm_train_flops_per_token(256, 51)
    out = {"measured": {"our_corpus_pieces_read": pieces_read, "our_corpus_tokens": tokens,
                        "our_tokens_per_piece": round(per_piece, 1),
                        "cpu_tokens_per_s_units256_batch32": cpu_tps_units256,
                        "cpu_tokens_per_s_units64_batch64": cpu_tps_units64},
           "computed": {"train_flops_per_token_units256": flops256,
                        "cpu_achieved_gflops_units256": round(cpu_tps_units256 * flops256 / 1e9, 1)
                        if cpu_tps_units256 else None,
                        "gpu_tokens_per_s_assumed_latency": gpu_tps,
                        "gpu_flops_needed_fraction_of_peak": round(gpu_tps * flops256 / ASSUMED_GPU_PEAK_FLOPS, 3)},
           "assumed": {"lakh_files": LAKH_FILES, "melody_steps_per_lakh_file": ASSUMED_LAKH_MELODY_STEPS,
                       "gpu_step_latency_s": ASSUMED_STEP_LATENCY_S, "gpu_batch": ASSUMED_GPU_BATCH,
                       "gpu_peak_flops": ASSUMED_GPU_PEAK_FLOPS, "scaling_efficiency_8_gpus": ASSUMED_SCALING_8}}
    rows = []
    for label, steps in (("tokens/file as our folk corpus (measured)", per_piece),
                         ("tokens/file of a full song (assumed)", ASSUMED_LAKH_MELODY_STEPS)):
        total = LAKH_FILES * steps
        rows.append({"basis": label, "epoch_tokens": round(total),
                     "cpu_hours_units256": round(total / cpu_tps_units256 / 3600, 1) if cpu_tps_units256 else None,
                     "1_gpu_minutes": round(total / gpu_tps / 60, 1),
                     "8_gpu_minutes": round(total / (gpu_tps * 8 * ASSUMED_SCALING_8) / 60, 2)})
    out["rows"] = rows
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "one":
        ap = argparse.ArgumentParser()
        ap.add_argument("--corpus", required=True)
        ap.add_argument("--units", type=int, default=64)
        ap.add_argument("--distribute", default="none")
        ap.add_argument("--batch", type=int, default=64)
        ap.add_argument("--tx", type=int, default=256)
        a = ap.parse_args(argv[1:])
        print(json.dumps(one_run(a.corpus, a.units, a.distribute, a.batch, a.tx)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="data/corpora/default")
    ap.add_argument("--shards", default="data/corpora/default-x13")
    ap.add_argument("--units", type=int, default=64)
    ap.add_argument("--skip-workers", action="store_true")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json")
    ap.add_argument("--lakh-from", metavar="JSON", help="only recompute the Lakh estimate from a saved --json")
    a = ap.parse_args(argv)
    if a.lakh_from:
        saved = json.loads(Path(a.lakh_from).read_text())
        report = json.loads((Path(a.corpus) / "report.json").read_text())
        print(json.dumps(lakh_estimate(report, saved.get("units256", {}).get("tokens_per_s"),
                                       saved.get("in_memory", {}).get("tokens_per_s")), indent=1))
        return 0
    results: dict = {}
    common = ["--units", str(a.units)]
    if not a.skip_memory:
        if not (Path(a.shards) / "shards.json").is_file():
            subprocess.run([sys.executable, "-m", "app", "music", "shard", "--corpus", a.corpus, "--out", a.shards,
                            "--augment", "6", "--shards", "16"], cwd=ROOT, check=True,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
        results["in_memory"] = run_child(["--corpus", a.corpus, *common])
        print(json.dumps(results["in_memory"]), flush=True)
        results["streamed"] = run_child(["--corpus", a.shards, *common])
        print(json.dumps(results["streamed"]), flush=True)
    if not a.skip_workers:
        results["one_process"] = results.get("in_memory") or run_child(["--corpus", a.corpus, *common])
        results["two_workers"] = two_workers(a.corpus, a.units, 32, 256)
        print(json.dumps(results["two_workers"]), flush=True)
    report = json.loads((Path(a.corpus) / "report.json").read_text())
    cpu256 = None
    if os.environ.get("BENCH_UNITS256", "1") == "1":
        results["units256"] = run_child(["--corpus", a.corpus, "--units", "256", "--batch", "32"])
        cpu256 = results["units256"]["tokens_per_s"]
        print(json.dumps(results["units256"]), flush=True)
    results["lakh"] = lakh_estimate(report, cpu256, (results.get("in_memory") or {}).get("tokens_per_s"))
    print(json.dumps(results["lakh"], indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

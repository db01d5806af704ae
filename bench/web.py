"""Load check of the web page: N concurrent generate requests (names and music mixed) through the Gradio client.

    .venv/bin/python bench/web.py                      # starts `python -m app web` on a free port with models/
    .venv/bin/python bench/web.py --url http://127.0.0.1:7860/   # or measure a server that is already running

Each request is one simulated user with its own Client (connected before the clock starts); all are released at
once. Even-numbered requests ask for names (--names N names from --names-model), odd ones for music (one melody of
--bars bars from --music-model, with its WAV and piano roll). A request succeeds when it returns without error and
its output is real: the names list has N entries, the melody's .wav, .png and .mid came back non-empty. Latency
is measured per request from release to result (so it includes waiting in the server's queue). Prints a summary
and writes JSON to --json if given. Exit status 1 if any request failed.

Hostile primers (issue 12): `--hostile 4` runs the batch twice on the same server, first as above, then with four
more music requests released at the same instant whose primer is a 101-byte MIDI file (resolution 1, one note
9,999,990 ticks long: 40 million steps; built in code by `hostile_midi`). A hostile request succeeds when the page
answers with an error message that names no server path. The summary compares the normal music requests' median
latency with and without the hostile ones (the bar: under 2x).

    .venv/bin/python bench/web.py --requests 50 --hostile 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(models_dir: str, outputs_dir: str, port: int, log_path: Path) -> subprocess.Popen:
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "web", "--port", str(port), "--models-dir", models_dir,
                             "--outputs-dir", outputs_dir], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL,
                            env={**os.environ, "GRADIO_TEMP_DIR": str(Path(outputs_dir) / "gradio-tmp")})
    url = f"http://127.0.0.1:{port}/"
    end = time.time() + 120
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("server did not start within 120 s")


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in 0..100."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def hostile_midi(size: int = 101, ticks: int = 9_999_990) -> bytes:
    """A `size`-byte MIDI file (resolution 1) with one note `ticks` long (40 M steps at 4 per quarter)."""
    import struct

    def vlq(n: int) -> bytes:
        out = [n & 0x7F]
        while n > 0x7F:
            n >>= 7
            out.append(0x80 | (n & 0x7F))
        return bytes(reversed(out))

    events = b"\x00\x90\x3c\x64" + vlq(ticks) + b"\x80\x3c\x00"
    pad = size - 14 - 8 - len(events) - 4 - 4
    track = b"\x00\xff\x03" + vlq(pad) + b"x" * pad + events + b"\x00\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1) + b"MTrk" + struct.pack(">I", len(track)) + track


def hostile_request(client, primer: Path, args) -> tuple[str, bool, str]:
    from gradio_client import handle_file

    out = client.predict(args.music_model, 1, args.bars, 1.0, "any", 120, 0, "", handle_file(str(primer)),
                         api_name="/music")
    status = out[0] or ""
    ok = "Error" in status and "/" not in status.replace("</span>", "")
    return "hostile", ok, status[:300]


def one_request(client, k: int, args) -> tuple[str, bool, str]:
    if k % 2 == 0:
        status, page, txt = client.predict(args.names_model, args.names, 1.0, "", "", False, "",
                                           api_name="/names")
        count = page.count("<li>")
        ok = not status and count == args.names and txt and Path(txt).stat().st_size > 0
        return "names", bool(ok), status or (f"{count} names" if not ok else "")
    out = client.predict(args.music_model, 1, args.bars, 1.0, "any", 120, 0, "", None, api_name="/music")
    status, _title, wav, png, mid = out[:5]
    ok = not status and all(p and Path(p).stat().st_size > 0 for p in (wav, png, mid))
    return "music", bool(ok), status or ("missing files" if not ok else "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="measure this running server instead of starting one")
    ap.add_argument("--models-dir", default="models")
    ap.add_argument("--names-model", default="dinos")
    ap.add_argument("--music-model", default="folk")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--names", type=int, default=20, help="names per names request (default 20)")
    ap.add_argument("--bars", type=int, default=8, help="bars per melody (default 8)")
    ap.add_argument("--hostile", type=int, default=0,
                    help="also run the batch with this many hostile-primer music requests (see above)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)

    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    from gradio_client import Client

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="bench-web-")
    url = args.url
    if url is None:
        port = free_port()
        proc = start_server(args.models_dir, tmp.name, port, Path(tmp.name) / "server.log")
        url = f"http://127.0.0.1:{port}/"
    try:
        n_all = args.requests + args.hostile
        clients = [Client(url, verbose=False, download_files=str(Path(tmp.name) / f"client{k}"))
                   for k in range(n_all)]
        # warm-up (not timed): load each model once, as a server that has served a request would have
        one_request(clients[0], 0, args)
        one_request(clients[0], 1, args)
        primer = Path(tmp.name) / "hostile.mid"
        primer.write_bytes(hostile_midi())
        results, wall = run_batch(clients, args, 0, primer)
        loaded = run_batch(clients, args, args.hostile, primer) if args.hostile else None
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    summary = summarize(results, wall, args)
    report(summary, args.names, args.bars, "")
    if loaded is not None:
        hostile = summarize(*loaded, args)
        report(hostile, args.names, args.bars, f"with {args.hostile} hostile primers: ")
        base, under = summary["by_kind"]["music"]["median_s"], hostile["by_kind"]["music"]["median_s"]
        summary["with_hostile_primers"] = hostile
        summary["music_median_ratio"] = under / base
        print(f"normal music median {under:.2f} s with {args.hostile} hostile primers vs {base:.2f} s without: "
              f"{under / base:.2f}x (bar: under 2x)")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n")
    tmp.cleanup()
    ok = summary["succeeded"] == args.requests and (loaded is None or (
        summary["with_hostile_primers"]["succeeded"] == args.requests + args.hostile
        and summary["music_median_ratio"] < 2.0))
    return 0 if ok else 1


def run_batch(clients, args, hostile: int, primer: Path) -> tuple[list[dict], float]:
    """Release args.requests normal requests (and `hostile` hostile-primer ones) at once; their results, wall time."""
    n = args.requests + hostile
    barrier = threading.Barrier(n + 1)
    results: list[dict] = [{} for _ in range(n)]

    def worker(k: int) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        try:
            kind, ok, note = one_request(clients[k], k, args) if k < args.requests else \
                hostile_request(clients[k], primer, args)
        except Exception as exc:  # a failed request is a result, not a crash of the bench
            kind = "hostile" if k >= args.requests else ("names" if k % 2 == 0 else "music")
            ok, note = False, f"{type(exc).__name__}: {exc}"
        results[k] = {"kind": kind, "ok": ok, "seconds": time.perf_counter() - t0, "note": note}

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t_all = time.perf_counter()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t_all


def summarize(results: list[dict], wall: float, args) -> dict:
    lat = [r["seconds"] for r in results]
    kinds = [k for k in ("names", "music", "hostile") if any(r["kind"] == k for r in results)]
    return {
        "requests": len(results), "succeeded": sum(r["ok"] for r in results),
        "names_requests": sum(r["kind"] == "names" for r in results),
        "music_requests": sum(r["kind"] == "music" for r in results),
        "hostile_requests": sum(r["kind"] == "hostile" for r in results),
        "median_s": statistics.median(lat), "p95_s": percentile(lat, 95), "max_s": max(lat), "wall_s": wall,
        "by_kind": {kind: {"median_s": statistics.median([r["seconds"] for r in results if r["kind"] == kind]),
                           "p95_s": percentile([r["seconds"] for r in results if r["kind"] == kind], 95)}
                    for kind in kinds},
        "settings": {"names_model": args.names_model, "music_model": args.music_model, "names": args.names,
                     "bars": args.bars, "url": args.url or "started by the bench"},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "failures": [r for r in results if not r["ok"]],
    }


def report(summary: dict, names: int, bars: int, prefix: str) -> None:
    print(f"{prefix}{summary['succeeded']}/{summary['requests']} requests succeeded ({summary['names_requests']} "
          f"names of {names}, {summary['music_requests']} music of {bars} bars"
          + (f", {summary['hostile_requests']} hostile primers refused" if summary["hostile_requests"] else "")
          + "), all released at once")
    print(f"  latency: median {summary['median_s']:.2f} s, p95 {summary['p95_s']:.2f} s, max {summary['max_s']:.2f} "
          f"s; all done in {summary['wall_s']:.2f} s")
    for kind, v in summary["by_kind"].items():
        print(f"  {kind:<7}: median {v['median_s']:.2f} s, p95 {v['p95_s']:.2f} s")
    for f in summary["failures"]:
        print(f"  FAILED {f['kind']}: {f['note']}")


if __name__ == "__main__":
    sys.exit(main())

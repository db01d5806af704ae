"""Corpus-build benchmark: pieces/s and tokens/s, cold and cached, 1 process vs all cores.

Run: .venv/bin/python bench/corpus.py [--midi-files 1000] [--skip-default] [--jobs 1 2] [--abc-tunes 80]
                                      [--json out.json]

Workloads
  default   the default corpus (music21 collections oneills1850, airdsAirs, ryansMammoth: ABC files)
  midi      a folder of --midi-files .mid files written from the default corpus (one tune per file) in a temp dir
  abc       --abc-tunes tunes of Aird's Airs book 1 parsed in this process, with music21's defaults and with
            app.music.sources.abc_parsing() (no beaming, no re-barring), then read into pieces: CPU ms per tune
Each build runs `python -m app music corpus --source ... --out TMP --quiet --jobs J` as a subprocess, so the
times include interpreter start and imports, as a user sees them. "cold" = empty output folder (no cache);
"cached" = the same command again on an unchanged source. The load average is printed with every row because
the machine may be shared, and so is the CPU time (user + sys of the build and its workers), which load does not
inflate as much as wall time. Goals: >= 1,000 MIDI melodies in <= 30 s cold and <= 2 s cached on 2 cores
(issue 3); the default corpus cold in <= 75 s on 2 cores (issue 10).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.music.corpus import load_corpus  # noqa: E402
from app.music.midi_io import write_midi  # noqa: E402
from app.music.sources import DEFAULT_SOURCES  # noqa: E402


def build(sources: list[str], out: Path, jobs: int) -> tuple[float, dict, float]:
    """Run the CLI once; returns (wall seconds, report, CPU seconds: user + sys of the process and its workers)."""
    cmd = [sys.executable, "-m", "app", "music", "corpus", "--out", str(out), "--quiet", "--jobs", str(jobs)]
    for s in sources:
        cmd += ["--source", s]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        sys.exit(f"build failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return dt, json.loads((out / "report.json").read_text()), cpu


def abc_parse_rows(n: int) -> list[dict]:
    """CPU time per tune of music21's ABC import, default vs abc_parsing(), plus piece_from_score (repeats, metre)."""
    import warnings

    from music21 import converter

    from app.music.sources import (_decode_text, _scores, abc_parsing, music21_collection, piece_from_score,
                                   split_abc)

    tunes = split_abc(_decode_text(music21_collection("airdsAirs")[0].read_bytes()))[:n]
    converter.parse(tunes[0][1], format="abc")  # warm up imports and caches
    rows = []
    for mode in ("music21 default", "abc_parsing"):
        parse = read = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _, text in tunes:
                t0 = time.process_time()
                if mode == "abc_parsing":
                    with abc_parsing():
                        scores = _scores(converter.parse(text, format="abc"))
                else:
                    scores = _scores(converter.parse(text, format="abc"))
                t1 = time.process_time()
                for sc in scores:
                    piece_from_score(sc, "t")
                parse, read = parse + t1 - t0, read + time.process_time() - t1
        row = {"workload": "abc", "mode": mode, "tunes": len(tunes), "parse_ms_per_tune": round(1000 * parse / n, 2),
               "piece_ms_per_tune": round(1000 * read / n, 2), "load_avg_1min": round(os.getloadavg()[0], 2)}
        rows.append(row)
        print(f"abc      {mode:16} parse {row['parse_ms_per_tune']:6.2f} ms/tune, piece_from_score "
              f"{row['piece_ms_per_tune']:5.2f} ms/tune ({n} tunes; load avg {row['load_avg_1min']:.2f})", flush=True)
    return rows


def write_midi_folder(corpus_dir: Path, folder: Path, n: int) -> int:
    """Write up to n tunes of a built corpus as .mid files (original segments only, their own qpm and metre)."""
    c = load_corpus(corpus_dir)
    k = 0
    for ids, meta in zip(c.train + c.val, c.train_meta + c.val_meta):
        if meta["shift"] != 0:
            continue
        m = c.codec.decode(ids, steps_per_quarter=meta["steps_per_quarter"], qpm=meta["qpm"],
                           time_signature=meta["metre"], program=73)
        write_midi(m, folder / f"{k:05d}.mid")
        k += 1
        if k == n:
            break
    return k


def run_workload(name: str, sources: list[str], tmp: Path, jobs_list: list[int]) -> list[dict]:
    rows = []
    for jobs in jobs_list:
        out = tmp / f"{name}-j{jobs}"
        shutil.rmtree(out, ignore_errors=True)
        for mode in ("cold", "cached"):
            load = os.getloadavg()[0]
            seconds, report, cpu = build(sources, out, jobs)
            row = {"workload": name, "jobs": jobs, "mode": mode, "seconds": round(seconds, 2),
                   "cpu_seconds": round(cpu, 2),
                   "pieces_read": report["pieces"]["read"], "pieces_kept": report["pieces"]["kept"],
                   "tokens": report["tokens"], "pieces_per_s": round(report["pieces"]["read"] / seconds, 1),
                   "tokens_per_s": round(report["tokens"] / seconds), "load_avg_1min": round(load, 2)}
            rows.append(row)
            print(f"{name:8} jobs={jobs} {mode:6} {seconds:7.2f} s (cpu {cpu:7.2f} s)  "
                  f"{row['pieces_per_s']:8.1f} pieces/s  "
                  f"{row['tokens_per_s']:>10,} tokens/s  (pieces {row['pieces_read']}, kept {row['pieces_kept']}, "
                  f"tokens {row['tokens']:,}; load avg {load:.2f})", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--midi-files", type=int, default=1000, help="MIDI files to write and build (>= 500)")
    ap.add_argument("--skip-default", action="store_true", help="only the MIDI workload (builds the default "
                                                                  "corpus once, all cores, to write the files)")
    ap.add_argument("--abc-tunes", type=int, default=80, help="tunes for the ABC parse workload (0 = skip)")
    ap.add_argument("--jobs", type=int, nargs="+", help="process counts to run (default: 1 and all cores)")
    ap.add_argument("--json", type=Path, help="also write the rows here")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    jobs_list = args.jobs or ([1, cores] if cores > 1 else [1])
    print(f"cores: {cores}; python {sys.version.split()[0]}")
    rows: list[dict] = abc_parse_rows(args.abc_tunes) if args.abc_tunes > 0 else []
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as d:
        tmp = Path(d)
        if args.skip_default:
            build(list(DEFAULT_SOURCES), tmp / f"default-j{jobs_list[-1]}", jobs_list[-1])
        else:
            rows += run_workload("default", list(DEFAULT_SOURCES), tmp, jobs_list)
        midi = tmp / "midi"
        midi.mkdir()
        n = write_midi_folder(tmp / f"default-j{jobs_list[-1]}", midi, args.midi_files)
        print(f"wrote {n} MIDI files to {midi}")
        rows += run_workload("midi", [str(midi)], tmp, jobs_list)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

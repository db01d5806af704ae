"""Melody-reader benchmark (issue 12 item 8): read + extract dense and very long MIDI files, time and peak RSS.

Run: .venv/bin/python bench/reader.py [--code DIR] [--cases dense20k,dense50k,seq1m] [--raise-limits]

Cases (MIDI written in code, 480 ticks per quarter):
  dense20k / dense50k  20,000 / 50,000 note-ons of one pitch at tick 0, then their note-offs (the issue's file)
  chord20k             20,000 note-ons cycling over 60 pitches at tick 0
  seq1m                1,000,000 notes in sequence, overlapping (8 MB)
Each case runs `app.music.corpus.extract_file` in a fresh subprocess (python -c, PYTHONPATH=--code, default this
checkout) and reports wall seconds (reading + extraction, imports excluded) and the child's peak RSS.
--code DIR runs another checkout (e.g. `git archive <commit> app | tar -x -C DIR` for the code before a change).
--raise-limits lifts ReadLimits (2,000,000 notes, 1e9 ticks, 1e6 quarters) so seq1m measures the reader and
the extraction themselves, not the refusal.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_case(name: str, path: Path) -> None:
    import struct

    body = bytearray()
    if name.startswith("dense") or name.startswith("chord"):
        n = int(name.removeprefix("dense").removeprefix("chord").replace("k", "000"))
        pitch = (lambda i: 60) if name.startswith("dense") else (lambda i: 40 + i % 60)
        for i in range(n):
            body += bytes([0, 0x90, pitch(i), 90])
        for i in range(n):
            body += (b"\x83\x60" if i == 0 else b"\x00") + bytes([0x80, pitch(i), 0])
    else:  # seq1m
        n = 1_000_000
        for i in range(n):
            p = 40 + (i * 7) % 50
            body += bytes([0, 0x90, p, 90, 60, 0x80, p, 0])
    body += b"\x00\xff\x2f\x00"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480) + b"MTrk" + struct.pack(">I", len(body)) + body)


CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from app.music.corpus import extract_file
from app.music.melody import ExtractConfig
kw = {}
if sys.argv[2] == "1":
    try:
        from app.music.limits import ReadLimits
        kw["limits"] = ReadLimits(max_notes=2_000_000, max_ticks=10**9, max_piece_quarters=1e6, max_note_quarters=1e6)
    except ImportError:
        pass
cfg = dict(ExtractConfig(min_notes=1).__dict__)
t0 = time.perf_counter()
res = extract_file(sys.argv[1], "case.mid", cfg, **kw)
dt = time.perf_counter() - t0
print(json.dumps({"seconds": round(dt, 2), "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "pieces": len(res["pieces"]), "skips": [[s["reason"], s["detail"][:90]] for s in res["skipped"]]}))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--code", default=str(ROOT), help="checkout whose app/ is measured (default: this one)")
    ap.add_argument("--cases", default="dense20k,dense50k,chord20k,seq1m")
    ap.add_argument("--raise-limits", action="store_true")
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases.split(","):
            path = Path(tmp) / f"{case}.mid"
            write_case(case, path)
            try:
                proc = subprocess.run([sys.executable, "-c", CHILD, str(path), "1" if args.raise_limits else "0"],
                                      capture_output=True, text=True, timeout=args.timeout,
                                      env={**os.environ, "PYTHONPATH": args.code}, cwd=args.code)
                out = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
            except subprocess.TimeoutExpired:
                out = f"timed out after {args.timeout:.0f} s"
            print(f"{case:9s} {path.stat().st_size:>10,} bytes  {out}  (load avg {os.getloadavg()[0]:.1f})",
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fuzz harness (issue 12): hostile inputs through every reading path, each file with a time and memory cap.

Run:  nice -n 10 .venv/bin/python bench/fuzz.py --n 10000 --jobs 2        (the acceptance run; BENCHMARKS.md)
      .venv/bin/python bench/fuzz.py --n 200 --stages reader              (a quick look while developing)

Inputs: --n files of the KINDS below (>= 40 kinds, round-robin, each with seeded random variation): byte flips,
truncations, absurd tempo / time signatures / delta times, zero-length and huge notes, dense chords, 16 tracks,
drums only, format 2, non-MIDI named .mid, garbage ABC / MusicXML, non-UTF-8 file names and names files,
symlink loops and links out of the tree, FIFOs.

Stages (--stages, default all):
  reader   every input through the per-file reader (app.music.corpus.extract_file; a folder input is walked with
           find_files first) or, for names files, app.names.codec.read_names -- each in a child forked from a warm
           process. A time-out is a child past --time-cap CPU seconds (RLIMIT_CPU: the work the file causes, not
           the machine's load) or past --wall-cap wall seconds (a hang: a blocked read uses no CPU). RLIMIT_AS
           --as-cap-gb is a safety net; the child's peak RSS (ru_maxrss, which includes the pages of the forked
           process, ~75 MB) is recorded per file.
  corpus   the music inputs in batches of --batch files through `python -m app music corpus` (a subprocess per
           batch): exit status 0 or 2, and never "Traceback" on stderr.
  primer   every .mid input through the --primer-midi reading path (MelodyGenerator.primer_ids with the
           models/folk folder), forked and capped like the reader stage.
Counts printed: clean skips by reason, tracebacks (an exception that escaped, a crashed child, or a skip whose
detail is a bare Python exception -- an internal error swallowed, not a reason), time-outs, peak RSS.
Exit status 1 if any traceback or time-out, or a peak RSS above --rss-cap-mb.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- a tiny SMF writer (no validation: it must be able to write broken files) ----------------------------------------
def varlen(v: int) -> bytes:
    out = [v & 0x7F]
    v >>= 7
    while v:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(reversed(out))


def track(events: list[tuple[int, bytes]], end: bool = True) -> bytes:
    body = b"".join(varlen(d) + e for d, e in events) + (b"\x00\xff\x2f\x00" if end else b"")
    return b"MTrk" + struct.pack(">I", len(body)) + body


def smf(tracks: list[bytes], fmt: int = 1, division: int = 480, ntracks: int | None = None) -> bytes:
    n = len(tracks) if ntracks is None else ntracks
    return b"MThd" + struct.pack(">IHHH", 6, fmt, n, division) + b"".join(tracks)


def on(p: int, v: int = 90, ch: int = 0) -> bytes:
    return bytes([0x90 | ch, p & 0x7F, v & 0x7F])


def off(p: int, ch: int = 0) -> bytes:
    return bytes([0x80 | ch, p & 0x7F, 0])


def tempo(us: int) -> bytes:
    return b"\xff\x51\x03" + us.to_bytes(3, "big")


def timesig(num: int, den_exp: int) -> bytes:
    return b"\xff\x58\x04" + bytes([num & 0xFF, den_exp & 0xFF, 24, 8])


def melody_events(rng: random.Random, n: int = 32, res: int = 480, ch: int = 0, lo: int = 55, hi: int = 84):
    ev = []
    for _ in range(n):
        p = rng.randrange(lo, hi)
        ev += [(0, on(p, ch=ch)), (res // rng.choice([1, 2, 4]), off(p, ch=ch))]
    return ev


def valid_midi(rng: random.Random, n: int = 32, res: int = 480) -> bytes:
    meta = [(0, tempo(rng.randrange(300_000, 900_000))), (0, timesig(rng.choice([2, 3, 4, 6]), 2))]
    return smf([track(meta), track([(0, b"\xff\x03\x05flute"), (0, b"\xc0\x49")] + melody_events(rng, n, res))])


# --- the kinds: name -> function(rng) -> bytes, or a "tree" (dict rel path -> bytes | ("symlink", target) |
# ("fifo",)), or ("names", bytes | special) for names files --------------------------------------------------------
def _flip(data: bytes, rng: random.Random, k: int) -> bytes:
    b = bytearray(data)
    for _ in range(k):
        i = rng.randrange(len(b))
        b[i] = rng.randrange(256)
    return bytes(b)


def _abc_tune(rng: random.Random, x: int = 1) -> str:
    body = " ".join("".join(rng.choice("ABCDEFGabcdefg") + rng.choice(["", "2", "/2", "3"]) for _ in range(4)) + " |"
                    for _ in range(8))
    return f"X:{x}\nT:Tune {x}\nM:{rng.choice(['4/4', '6/8', '3/4'])}\nL:1/8\nK:{rng.choice(['G', 'D', 'Am'])}\n{body}\n"


MUSICXML = """<?xml version="1.0" encoding="UTF-8"?>
<score-partwise version="3.1"><part-list><score-part id="P1"><part-name>Flute</part-name></score-part></part-list>
<part id="P1"><measure number="1"><attributes><divisions>{div}</divisions><time><beats>{beats}</beats>
<beat-type>{btype}</beat-type></time></attributes>{notes}</measure></part></score-partwise>
"""


def _xml(rng: random.Random, dur: int | None = None, n: int = 8, div: int = 1, beats: int = 4, btype: int = 4) -> str:
    notes = "".join(f"<note><pitch><step>{rng.choice('CDEFGAB')}</step><octave>{rng.randrange(4, 6)}</octave>"
                    f"</pitch><duration>{dur if dur is not None else rng.randrange(1, 3)}</duration></note>"
                    for _ in range(n))
    return MUSICXML.format(div=div, beats=beats, btype=btype, notes=notes)


def k_valid(rng):
    return valid_midi(rng)


def k_byte_flip(rng):
    return _flip(valid_midi(rng), rng, rng.randrange(1, 12))


def k_truncated(rng):
    d = valid_midi(rng)
    return d[: rng.randrange(15, len(d) - 1)]


def k_truncated_header(rng):
    return valid_midi(rng)[: rng.randrange(1, 14)]


def k_tempo_fast(rng):
    return smf([track([(0, tempo(1))] + melody_events(rng))])


def k_tempo_slow(rng):
    return smf([track([(0, tempo(0xFFFFFF))] + melody_events(rng))])


def k_tempo_zero(rng):
    return smf([track([(0, tempo(0))] + melody_events(rng))])


def k_absurd_timesig(rng):
    return smf([track([(0, timesig(rng.choice([0, 255, 99]), rng.choice([0, 7, 31, 255])))] + melody_events(rng))])


def k_huge_delta(rng):
    ev = []
    for _ in range(rng.randrange(1, 20)):
        p = rng.randrange(50, 80)
        ev += [(0x0FFFFFFF, on(p)), (rng.randrange(1, 0x0FFFFFFF), off(p))]
    return smf([track(ev)])


def k_delta_overflow(rng):
    body = b"\xff\xff\xff\xff\xff\x7f" + on(60) + b"\x60" + off(60)
    return smf([b"MTrk" + struct.pack(">I", len(body)) + body])


def k_zero_length_notes(rng):
    ev = []
    for _ in range(rng.randrange(10, 200)):
        p = rng.randrange(50, 80)
        ev += [(rng.randrange(0, 100), on(p)), (0, off(p))]
    return smf([track(ev)])


def k_huge_note(rng):  # the file: resolution 1, one note 9,999,990 ticks long
    return smf([track([(0, on(60)), (9_999_990, off(60))])], division=1)


def k_long_piece(rng):
    ev = []
    for _ in range(rng.randrange(100, 400)):
        p = rng.randrange(50, 80)
        ev += [(rng.randrange(1000, 50_000), on(p)), (rng.randrange(1, 2000), off(p))]
    return smf([track(ev)], division=rng.choice([1, 24, 96]))


def k_dense_chord(rng):
    n = rng.choice([1_000, 5_000, 20_000])
    ev = [(0, on(rng.randrange(0, 128))) for _ in range(n)] + [(480, off(p)) for p in range(128)]
    return smf([track(ev)])


def k_dense_same_pitch(rng):  # quadratic in pretty_midi's note pairing (issue 12 item 8)
    n = rng.choice([5_000, 20_000, 50_000])
    ev = [(0, on(60)) for _ in range(n)] + [(0, off(60)) for _ in range(n // 2)] + [(480, off(60))]
    return smf([track(ev)])


def k_many_notes(rng):  # more notes than ReadLimits.max_notes (~2 MB)
    n = rng.choice([260_000, 400_000])
    body = bytearray(b"\x00\x90")
    for i in range(n):
        p = 40 + i % 50
        body += bytes([p, 90, 1, p, 0, 0]) if i + 1 < n else bytes([p, 90, 1, p, 0])
    body += b"\x00\xff\x2f\x00"
    return smf([b"MTrk" + struct.pack(">I", len(body)) + bytes(body)])


def k_tracks_16(rng):
    return smf([track([(0, bytes([0xC0 | ch, rng.randrange(128)]))] + melody_events(rng, 16, ch=ch))
                for ch in range(16)])


def k_drums_only(rng):
    return smf([track(melody_events(rng, 32, ch=9, lo=35, hi=60))])


def k_format_2(rng):
    return smf([track(melody_events(rng)) for _ in range(rng.randrange(2, 5))], fmt=2)


def k_format_bad(rng):
    return smf([track(melody_events(rng))], fmt=rng.choice([3, 255, 65535]))


def k_smpte(rng):
    return smf([track(melody_events(rng))], division=0xE728)


def k_zero_division(rng):
    return smf([track(melody_events(rng))], division=0)


def k_no_tracks(rng):
    return smf([], ntracks=0)


def k_ntracks_lie(rng):
    return smf([track(melody_events(rng))], ntracks=rng.choice([2, 100, 65535]))


def k_chunk_len_lie(rng):
    t = track(melody_events(rng))
    return smf([t[:4] + struct.pack(">I", rng.choice([0xFFFFFFFF, len(t) * 10, 3])) + t[8:]])


def k_running_status_orphan(rng):
    body = b"\x00\x3c\x40\x60\x3c\x00"
    return smf([b"MTrk" + struct.pack(">I", len(body)) + body])


def k_data_byte_high(rng):
    return smf([track([(0, b"\x90\x3c\xc8"), (480, b"\x80\xbc\x00")])])


def k_sysex_huge_len(rng):
    return smf([track([(0, b"\xf0" + varlen(0x0FFFFFFF) + b"\x01\x02")], end=False)])


def k_meta_huge_len(rng):
    return smf([track([(0, b"\xff\x03" + varlen(0x0FFFFFFF) + b"abc")], end=False)])


def k_unterminated_notes(rng):
    return smf([track([(rng.randrange(0, 100), on(rng.randrange(40, 90))) for _ in range(rng.randrange(10, 500))])])


def k_offs_without_ons(rng):
    return smf([track([(rng.randrange(0, 100), off(rng.randrange(40, 90))) for _ in range(200)])])


def k_program_changes(rng):
    ev = []
    for _ in range(200):
        p = rng.randrange(50, 80)
        ev += [(0, on(p)), (10, bytes([0xC0, rng.randrange(128)])), (100, off(p))]
    return smf([track(ev)])


def k_random_bytes_mid(rng):
    return rng.randbytes(rng.randrange(1, 4000))


def k_mthd_random(rng):
    return b"MThd" + rng.randbytes(rng.randrange(1, 400))


def k_text_as_mid(rng):
    return _abc_tune(rng).encode()


def k_png_as_mid(rng):
    return b"\x89PNG\r\n\x1a\n" + rng.randbytes(200)


def k_empty_mid(rng):
    return b""


def k_whitespace_mid(rng):
    return b" \n\t" * rng.randrange(1, 100)


def k_rmi(rng):
    d = valid_midi(rng)
    return b"RIFF" + struct.pack("<I", len(d) + 12) + b"RMIDdata" + struct.pack("<I", len(d)) + d


def k_abc_garbage(rng):
    return ("X:1\nK:C\n" + "".join(rng.choice("ABCDEFGabcdefgz|[]()^_=,'/23456789:<>{}!+\"~.-") for _ in
                                   range(rng.randrange(10, 2000)))).encode()


def k_abc_long_note(rng):  # the 39-byte tune
    return f"X:1\nL:1/8\nK:C\nC{rng.choice(['99999999', '9999999', '131072'])} D E F G A B c|".encode()


def k_abc_many_tunes(rng):
    return "".join(_abc_tune(rng, x) for x in range(1, rng.choice([252, 300]))).encode()


def k_abc_huge_tune(rng):
    return ("X:1\nL:1/8\nK:C\n" + "CDEF GABc|" * rng.choice([2_100, 25_000])).encode()


def k_abc_latin1(rng):
    return ("X:1\nT:Caf\xe9 na m\xfana\nL:1/8\nK:G\nGABc dB|c2 A2 F2|\n").encode("latin-1")


def k_abc_binary(rng):
    return b"X:1\nK:C\n" + rng.randbytes(rng.randrange(10, 3000))


def k_abc_tuplets(rng):
    return f"X:1\nL:1/8\nK:C\n({rng.choice([9999, 255, 64])}:1:{rng.choice([9999, 255])}CDEFGAB|\n".encode()


def k_abc_dense_chords(rng):
    return ("X:1\nL:1/8\nK:C\n" + "[CEGcegc'e'g'] " * rng.randrange(100, 2000) + "|\n").encode()


def k_abc_flip(rng):
    return _flip(_abc_tune(rng).encode(), rng, rng.randrange(1, 10))


def k_xml_garbage(rng):
    return ("<?xml version='1.0'?><score-partwise>" + "".join(rng.choice("<>/abc =\"'&;") for _ in
                                                               range(rng.randrange(10, 2000)))).encode()


def k_xml_truncated(rng):
    d = _xml(rng).encode()
    return d[: rng.randrange(10, len(d))]


def k_xml_huge_duration(rng):
    return _xml(rng, dur=rng.choice([99_999_999, 10 ** 12]), n=2).encode()


def k_xml_absurd_time(rng):
    return _xml(rng, beats=rng.choice([0, 9999]), btype=rng.choice([0, 3, 1024]), div=rng.choice([0, 1, 10 ** 9])
                ).encode()


def k_xml_laughs(rng):
    ents = '<!ENTITY a0 "lol">' + "".join(f'<!ENTITY a{i} "{("&a%d;" % (i - 1)) * 10}">' for i in range(1, 10))
    return (f'<?xml version="1.0"?><!DOCTYPE score-partwise [{ents}]><score-partwise><part-list>'
            f'<score-part id="P1"><part-name>&a9;</part-name></score-part></part-list></score-partwise>').encode()


def k_mxl_garbage(rng):
    return b"PK\x03\x04" + rng.randbytes(rng.randrange(10, 1000))


def k_krn_garbage(rng):
    return ("**kern\n" + "\n".join(rng.choice(["4c", "8d", "*M4/4", "=", "99999999e", "*-", "!!x"]) for _ in
                                   range(rng.randrange(5, 300)))).encode()


def k_nonutf8_filename(rng):
    return {b"Caf\xe9 \xff.mid".decode("utf-8", "surrogateescape"): valid_midi(rng)}


def k_symlink_loop(rng):
    return {"a.mid": valid_midi(rng), "sub/b.mid": valid_midi(rng), "sub/up": ("symlink", ".."),
            "sub/deeper/back": ("symlink", "../..")}


def k_symlink_out(rng):
    return {"a.mid": valid_midi(rng), "sub/out": ("symlink", "/"), "link.mid": ("symlink", "a.mid")}


def k_fifo(rng):
    return {"pipe.mid": ("fifo",), "pipe.abc": ("fifo",), "ok.mid": valid_midi(rng)}


def k_broken_symlink(rng):
    return {"gone.mid": ("symlink", "does-not-exist.mid"), "self.mid": ("symlink", "self.mid")}


def k_names_nonutf8(rng):
    return ("names", "Caf\xe9\nna\xefve\n".encode("latin-1"))


def k_names_binary(rng):
    return ("names", rng.randbytes(rng.randrange(1, 3000)))


def k_names_huge(rng):  # a sparse file above the 64 MiB cap: refused before reading
    return ("names", ("sparse", 70 << 20))


def k_names_long_lines(rng):
    return ("names", ("x" * rng.randrange(100, 100_000) + "\n").encode() * 3)


def k_names_fifo(rng):
    return ("names", ("fifo",))


def k_names_valid(rng):
    return ("names", "\n".join("".join(rng.choice("abcdefgh") for _ in range(rng.randrange(3, 12)))
                               for _ in range(100)).encode())


KINDS: dict[str, tuple[str, object]] = {}  # name -> (suffix, generator)
for _name, _fn in list(globals().items()):
    if _name.startswith("k_"):
        kname = _name[2:]
        suffix = (".abc" if kname.startswith("abc_") else ".xml" if kname.startswith("xml_") else
                  ".mxl" if kname.startswith("mxl_") else ".krn" if kname.startswith("krn_") else
                  ".txt" if kname.startswith("names_") else ".mid")
        KINDS[kname] = (suffix, _fn)
# kinds that reading a few of is enough for (each takes seconds); they get a share of 1 in RARE
RARE = {"many_notes": 50, "abc_many_tunes": 50, "abc_huge_tune": 20, "names_huge": 20}


def plan(n: int, seed: int, kinds: list[str]) -> list[tuple[str, int]]:
    """(kind, seed) for n inputs: round-robin over the kinds, the RARE kinds only every RARE[kind]-th round."""
    out: list[tuple[str, int]] = []
    rnd = 0
    while len(out) < n:
        for k in kinds:
            if len(out) >= n:
                break
            if rnd % RARE.get(k, 1) == 0:
                out.append((k, seed * 1_000_003 + len(out)))
        rnd += 1
    return out


def materialise(root: Path, idx: int, kind: str, seed: int) -> tuple[str, Path]:
    """Write input idx under root; returns (input type "file" | "tree" | "names", its path)."""
    suffix, fn = KINDS[kind]
    data = fn(random.Random(seed))
    if isinstance(data, tuple) and data[0] == "names":
        path = root / f"{idx:05d}_{kind}.txt"
        content = data[1]
        if isinstance(content, tuple) and content[0] == "sparse":
            with open(path, "wb") as f:
                f.truncate(content[1])
        elif isinstance(content, tuple) and content[0] == "fifo":
            os.mkfifo(path)
        else:
            path.write_bytes(content)
        return "names", path
    if isinstance(data, dict):
        base = root / f"{idx:05d}_{kind}"
        for rel, content in data.items():
            p = base / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple) and content[0] == "symlink":
                os.symlink(content[1], p)
            elif isinstance(content, tuple) and content[0] == "fifo":
                os.mkfifo(p)
            else:
                p.write_bytes(content)
        return "tree", base
    path = root / f"{idx:05d}_{kind}{suffix}"
    path.write_bytes(data)
    return "file", path


# --- forked, capped runs --------------------------------------------------------------------------------------------
_EXC_DETAIL = re.compile(r"^(\w+(Error|Exception|Exit|Interrupt)|Traceback)\b")


def internal_error(detail: str) -> bool:
    """A skip detail that is a bare Python exception (an internal error swallowed), not a reason for the user."""
    return bool(_EXC_DETAIL.match(detail or ""))


def _child_reader(kind: str, path: str) -> dict:
    import warnings

    from app.errors import AppError

    warnings.simplefilter("ignore")
    if kind == "names":
        from app.names.codec import read_names

        try:
            names = read_names(path)
            return {"skips": [], "ok": len(names)}
        except AppError as exc:
            return {"skips": [["names: " + type(exc).__name__, str(exc)[:200]]], "ok": 0}
    from app.music.corpus import extract_file
    from app.music.melody import ExtractConfig
    from app.music.sources import find_files

    cfg = dict(ExtractConfig().__dict__)
    if kind == "tree":
        files, skips = find_files([path])
        results = [extract_file(f.path, f.label, cfg) for f in files]
        out_skips = [[s.reason, s.detail] for s in skips]
    else:
        results = [extract_file(path, os.path.basename(path), cfg)]
        out_skips = []
    for r in results:
        out_skips += [[s["reason"], s["detail"]] for s in r["skipped"]]
    return {"skips": out_skips, "ok": sum(len(r["pieces"]) for r in results)}


_FOLK: dict = {}


def warm(primer: bool = False) -> None:
    """Import what the children use (and load the primer model) once, in the process they are forked from."""
    import app.music.corpus  # noqa: F401
    import app.music.generate  # noqa: F401
    import app.names.codec  # noqa: F401
    import music21.converter  # noqa: F401

    if primer and not _FOLK:
        from app.music.generate import MelodyGenerator

        _FOLK["gen"] = MelodyGenerator.load(ROOT / "models" / "folk")


def _child_primer(kind: str, path: str) -> dict:
    import warnings

    from app.errors import AppError
    warnings.simplefilter("ignore")
    try:
        ids = _FOLK["gen"].primer_ids(midi=path)
        return {"skips": [], "ok": int(len(ids))}
    except AppError as exc:
        msg = str(exc)
        reason = re.search(r"(too long|truncated|not MIDI|too many notes|too large|not a regular file|unreadable|"
                           r"empty file|outside the model's range|drums only|no notes|track not found|steps long)",
                           msg)
        return {"skips": [["primer: " + (reason.group(1) if reason else type(exc).__name__), msg[:200]]], "ok": 0}


def run_forked(items: list[tuple[str, str]], fn, jobs: int, time_cap: float, as_cap_gb: float,
               progress: bool = True, wall_cap: float | None = None, on_result=None) -> list[dict]:
    """Run fn(kind, path) for each item in a child forked from this process, at most `jobs` at once.

    A child is a time-out when it uses more than `time_cap` CPU seconds (RLIMIT_CPU: the work one file causes,
    whatever else the machine is doing) or runs longer than `wall_cap` wall seconds (default 6 x time_cap: a
    child blocked on a FIFO uses no CPU, so the wall cap catches hangs).
    Each result: {"skips": [[reason, detail]], "ok": n, "rss_mb": peak RSS of the child, "seconds": wall time,
    "cpu_s": CPU time, "timeout": bool, "traceback": str | None}.
    """
    wall_cap = 6 * time_cap if wall_cap is None else wall_cap
    results: list[dict | None] = [None] * len(items)
    running: dict[int, tuple[int, float, int]] = {}  # pid -> (index, start, read fd)
    nxt = 0
    done = 0
    t_print = time.time()
    # Sleep until a child exits (SIGCHLD) instead of polling: the parent must not take CPU from its children.
    # A child writes its result (< 60 KB, less than a pipe's buffer) and exits, so the pipe is read after reaping.
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    try:
        while nxt < len(items) or running:
            while nxt < len(items) and len(running) < jobs:
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:  # child
                    os.close(r)
                    signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
                    code = 0
                    try:
                        lim = int(as_cap_gb * (1 << 30))
                        resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
                        cpu = max(1, int(math.ceil(time_cap)))
                        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))  # SIGXCPU past time_cap CPU s
                        res = fn(*items[nxt])
                    except BaseException:
                        res = {"skips": [], "ok": 0, "traceback": traceback.format_exc()[-2000:]}
                        code = 3
                    try:
                        os.write(w, json.dumps(res).encode()[:60_000])
                    finally:
                        os._exit(code)
                os.close(w)
                running[pid] = (nxt, time.time(), r)
                nxt += 1
            reaped = False
            while running:
                try:
                    pid, status, ru = os.wait4(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                reaped = True
                if pid not in running:
                    continue
                i, start, fd = running.pop(pid)
                os.set_blocking(fd, False)
                raw = bytearray()
                try:
                    while chunk := os.read(fd, 65536):
                        raw += chunk
                except BlockingIOError:
                    pass
                os.close(fd)
                try:
                    res = json.loads(bytes(raw).decode())
                except (ValueError, UnicodeDecodeError):
                    res = {"skips": [], "ok": 0}
                sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
                res.setdefault("traceback", None)
                res["timeout"] = sig == signal.SIGXCPU  # past RLIMIT_CPU (the wall cap kills with SIGKILL below)
                if sig and not res["timeout"]:
                    res["traceback"] = f"child killed by signal {sig}"
                elif os.WIFEXITED(status) and os.WEXITSTATUS(status) not in (0, 3):
                    res["traceback"] = f"child exited with status {os.WEXITSTATUS(status)}"
                res["rss_mb"] = ru.ru_maxrss / 1024
                res["seconds"] = time.time() - start
                res["cpu_s"] = ru.ru_utime + ru.ru_stime
                results[i] = res
                done += 1
                if on_result:
                    on_result(i, res)
            now = time.time()
            for pid, (i, start, fd) in list(running.items()):
                if now - start > wall_cap:  # blocked (a FIFO?) or starved: a time-out
                    os.kill(pid, signal.SIGKILL)
                    running.pop(pid)
                    _, _, ru = os.wait4(pid, 0)
                    os.close(fd)
                    results[i] = {"skips": [], "ok": 0, "traceback": None, "timeout": True,
                                  "rss_mb": ru.ru_maxrss / 1024, "seconds": now - start,
                                  "cpu_s": ru.ru_utime + ru.ru_stime}
                    done += 1
                    if on_result:
                        on_result(i, results[i])
            if progress and time.time() - t_print > 15:
                t_print = time.time()
                print(f"    ... {done}/{len(items)}", file=sys.stderr, flush=True)
            if not reaped and running:
                signal.sigtimedwait({signal.SIGCHLD}, 0.5)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
    return results  # type: ignore[return-value]


def summarise(stage: str, items: list[tuple[str, str]], kinds_of: list[str], results: list[dict]) -> dict:
    reasons: Counter = Counter()
    tracebacks, internal, timeouts = [], [], []
    for (kind, path), k, r in zip(items, kinds_of, results):
        if r["timeout"]:
            timeouts.append(f"{k}: {path}")
        if r["traceback"]:
            tracebacks.append(f"{k}: {path}: {r['traceback'].strip().splitlines()[-1]}")
        for reason, detail in r["skips"]:
            reasons[reason] += 1
            if internal_error(detail):
                internal.append(f"{k}: {path}: {reason}: {detail}")
        if r["ok"]:
            reasons["(read fine)"] += 1
    rss = [r["rss_mb"] for r in results]
    secs = [r["cpu_s"] for r in results]
    walls = [r["seconds"] for r in results]
    per_kind: dict[str, list[float]] = {}
    for k, sec in zip(kinds_of, secs):
        per_kind.setdefault(k, []).append(sec)
    total_by_kind = sorted(((sum(v), k) for k, v in per_kind.items()), reverse=True)
    worst = max(range(len(results)), key=lambda i: rss[i]) if results else None
    slowest = max(range(len(results)), key=lambda i: secs[i]) if results else None
    return {"stage": stage, "inputs": len(items), "skips_by_reason": dict(reasons.most_common()),
            "tracebacks": len(tracebacks) + len(internal), "traceback_examples": (tracebacks + internal)[:10],
            "timeouts": len(timeouts), "timeout_examples": timeouts[:10],
            "peak_rss_mb": round(max(rss), 1) if rss else 0.0,
            "peak_rss_input": kinds_of[worst] if worst is not None else None,
            "slowest_cpu_s": round(max(secs), 2) if secs else 0.0, "slowest_wall_s": round(max(walls), 2) if walls
            else 0.0, "cpu_s_total": round(sum(secs), 1),
            "slowest_input": kinds_of[slowest] if slowest is not None else None,
            "seconds_by_kind_top": {k: round(t, 1) for t, k in total_by_kind[:8]}}


def run_corpus_batches(inputs: list[tuple[str, str, str]], batch: int, tmp: Path, jobs: int, timeout: float) -> dict:
    """Music inputs (files and trees) in folders of `batch` entries, each through `python -m app music corpus`."""
    music = [(t, p, k) for t, p, k in inputs if t != "names"]
    out = {"stage": "corpus", "inputs": len(music), "batches": 0, "exit_codes": Counter(), "tracebacks": 0,
           "traceback_examples": [], "timeouts": 0, "skips_by_reason": Counter(), "peak_rss_mb": 0.0,
           "seconds": 0.0}
    for b in range(0, len(music), batch):
        folder = tmp / f"batch_{b // batch:03d}"
        folder.mkdir()
        for t, p, k in music[b:b + batch]:
            os.rename(p, folder / Path(p).name)
        corpus_out = tmp / f"corpus_{b // batch:03d}"
        cmd = [sys.executable, "-m", "app", "music", "corpus", "--source", str(folder), "--out", str(corpus_out),
               "--quiet", "--jobs", str(jobs)]
        t0 = time.time()
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        try:
            so, se = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            so, se = proc.communicate()
            out["timeouts"] += 1
        out["seconds"] += time.time() - t0
        out["batches"] += 1
        out["exit_codes"][proc.returncode] += 1
        err = se.decode("utf-8", "replace")
        if "Traceback" in err or proc.returncode not in (0, 2):
            out["tracebacks"] += 1
            out["traceback_examples"].append(f"batch {b // batch}: rc {proc.returncode}: {err[-600:]}")
        rep = corpus_out / "report.json"
        if rep.exists():
            r = json.loads(rep.read_text(encoding="utf-8"))
            out["skips_by_reason"].update(r["skipped"]["counts"])
            out["skips_by_reason"]["(pieces kept)"] += r["pieces"]["kept"]
            internal = [s for s in r["skipped"]["items"] if internal_error(s["detail"])]
            out["tracebacks"] += len(internal)
            out["traceback_examples"] += [f"{s['source']}: {s['reason']}: {s['detail']}" for s in internal[:5]]
        shutil.rmtree(corpus_out, ignore_errors=True)
        print(f"   batch {b // batch}: rc {proc.returncode}, {time.time() - t0:.0f} s, tracebacks so far "
              f"{out['tracebacks']}, time-outs so far {out['timeouts']}", flush=True)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
    out["exit_codes"] = {str(k): v for k, v in out["exit_codes"].items()}
    out["skips_by_reason"] = dict(out["skips_by_reason"].most_common())
    out["seconds"] = round(out["seconds"], 1)
    return out


def summarise_files(paths: list[str], json_out: str | None, rss_cap_mb: float) -> int:
    """Figures of the reader and primer stages from --results files (one JSON line per input, any shards)."""
    by_stage: dict[str, dict[int, dict]] = {}
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue
            by_stage.setdefault(r["stage"], {})[r["i"]] = r
    figures: dict = {"stages": []}
    ok = True
    for stage, rows in by_stage.items():
        rs = [rows[i] for i in sorted(rows)]
        s = summarise(stage, [(r["kind"], str(r["i"])) for r in rs], [r["kind"] for r in rs], rs)
        s["kinds"] = len({r["kind"] for r in rs})
        print_stage(s)
        print(f"   kinds: {s['kinds']}")
        figures["stages"].append(s)
        ok &= s["tracebacks"] == 0 and s["timeouts"] == 0 and s["peak_rss_mb"] <= rss_cap_mb
    figures["ok"] = ok
    print("PASS" if ok else "FAIL")
    if json_out:
        Path(json_out).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    return 0 if ok else 1


def print_stage(s: dict) -> None:
    print(f"== {s['stage']}: {s['inputs']} inputs" + (f" in {s['batches']} batches, exit codes {s['exit_codes']}, "
                                                       f"{s['seconds']} s" if "batches" in s else ""))
    print(f"   tracebacks: {s['tracebacks']}   time-outs: {s['timeouts']}   peak RSS: {s['peak_rss_mb']} MB"
          + (f" ({s['peak_rss_input']})   slowest: {s['slowest_cpu_s']} CPU s ({s['slowest_input']}), "
             f"{s['slowest_wall_s']} s wall; CPU total {s['cpu_s_total']} s" if "slowest_cpu_s" in s else ""))
    print("   by reason: " + ", ".join(f"{k} {v}" for k, v in s["skips_by_reason"].items()))
    if s.get("seconds_by_kind_top"):
        print("   child CPU seconds by kind (top): " + ", ".join(f"{k} {v}" for k, v in s["seconds_by_kind_top"].items()))
    for ex in s["traceback_examples"] + s.get("timeout_examples", []):
        print("   !", ex[:300])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000, help="number of inputs (default 10000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="children at once (default 2)")
    ap.add_argument("--time-cap", type=float, default=10.0, help="CPU seconds per file (default 10)")
    ap.add_argument("--wall-cap", type=float, default=120.0, help="wall seconds per file, catches hangs (default 120)")
    ap.add_argument("--as-cap-gb", type=float, default=4.0, help="RLIMIT_AS per child, GiB (safety net; default 4)")
    ap.add_argument("--rss-cap-mb", type=float, default=1024.0, help="peak RSS per file that fails the run")
    ap.add_argument("--batch", type=int, default=1000, help="inputs per `music corpus` run (default 1000)")
    ap.add_argument("--corpus-max", type=int, default=0,
                    help="send only the first N inputs through `music corpus` (0 = all; the stage costs about as "
                         "much CPU as the reader stage again)")
    ap.add_argument("--stages", default="reader,primer,corpus", help="comma-separated: reader, primer, corpus")
    ap.add_argument("--kinds", default="", help="comma-separated subset of kinds (default all)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--shard", default="0/1", help="I/K: only inputs whose index %% K == I (run K shards at once)")
    ap.add_argument("--results", help="append one JSON line per finished input (reader and primer stages) to this "
                                      "file; inputs already in it are not run again")
    ap.add_argument("--summarise", nargs="+", metavar="JSONL", help="print the figures of --results files (of all "
                                                                   "shards) and exit")
    ap.add_argument("--list-kinds", action="store_true")
    args = ap.parse_args(argv)
    if args.list_kinds:
        print(f"{len(KINDS)} kinds: {' '.join(KINDS)}")
        return 0
    if args.summarise:
        return summarise_files(args.summarise, args.json, args.rss_cap_mb)
    kinds = [k for k in args.kinds.split(",") if k] or list(KINDS)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        ap.error(f"unknown kinds {unknown}; see --list-kinds")
    stages = [s for s in args.stages.split(",") if s]
    t_all = time.time()
    warm(primer=True)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures: dict = {"n": args.n, "kinds": len(kinds), "seed": args.seed, "jobs": args.jobs,
                     "time_cap_s": args.time_cap, "forking_process_rss_mb": round(base_rss, 1), "stages": []}
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    try:
        t0 = time.time()
        planned = plan(args.n, args.seed, kinds)
        inputs = []
        (tmp / "in").mkdir()
        shard, shards = (int(x) for x in args.shard.split("/"))
        done_before: set = set()
        if args.results and Path(args.results).exists():
            for line in Path(args.results).read_text(encoding="utf-8").splitlines():
                try:
                    r = json.loads(line)
                    done_before.add((r["stage"], r["i"]))
                except (ValueError, KeyError):
                    pass
        index = []
        for i, (k, s) in enumerate(planned):
            if i % shards != shard:
                continue
            t, p = materialise(tmp / "in", i, k, s)
            inputs.append((t, str(p), k))
            index.append(i)
        print(f"{len(inputs)} inputs of {len(set(k for _, _, k in inputs))} kinds written in "
              f"{time.time() - t0:.1f} s (forking process RSS {base_rss:.0f} MB)", flush=True)
        ok = True
        def recorder(stage, idx):
            if not args.results:
                return None

            def on_result(j, res):
                with open(args.results, "a", encoding="utf-8") as f:
                    f.write(json.dumps({"stage": stage, "i": idx[j], "kind": planned[idx[j]][0], **res}) + "\n")
            return on_result

        if "reader" in stages:
            t0 = time.time()
            sel = [j for j in range(len(inputs)) if ("reader", index[j]) not in done_before]
            items = [inputs[j][:2] for j in sel]
            res = run_forked(items, _child_reader, args.jobs, args.time_cap, args.as_cap_gb, wall_cap=args.wall_cap,
                             on_result=recorder("reader", [index[j] for j in sel]))
            s = summarise("reader", items, [inputs[j][2] for j in sel], res)
            s["seconds"] = round(time.time() - t0, 1)
            print_stage(s)
            figures["stages"].append(s)
        if "primer" in stages:
            t0 = time.time()
            sel = [j for j, (t, p, k) in enumerate(inputs) if t == "file" and p.endswith(".mid")
                   and ("primer", index[j]) not in done_before]
            mids = [inputs[j] for j in sel]
            items = [(t, p) for t, p, _ in mids]
            res = run_forked(items, _child_primer, args.jobs, args.time_cap, args.as_cap_gb, wall_cap=args.wall_cap,
                             on_result=recorder("primer", [index[j] for j in sel]))
            s = summarise("primer", items, [k for _, _, k in mids], res)
            s["seconds"] = round(time.time() - t0, 1)
            print_stage(s)
            figures["stages"].append(s)
        if "corpus" in stages:
            chosen = inputs[: args.corpus_max] if args.corpus_max else inputs
            s = run_corpus_batches(chosen, args.batch, tmp, args.jobs, timeout=max(600.0, args.batch * 1.0))
            print_stage(s)
            figures["stages"].append(s)
        for s in figures["stages"]:
            ok &= s["tracebacks"] == 0 and s["timeouts"] == 0 and (s["stage"] == "corpus"
                                                                     or s["peak_rss_mb"] <= args.rss_cap_mb)
        figures["seconds"] = round(time.time() - t_all, 1)
        figures["ok"] = ok
        print(f"{'PASS' if ok else 'FAIL'}: {args.n} inputs, {len(kinds)} kinds, {figures['seconds']} s")
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        return 0 if ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

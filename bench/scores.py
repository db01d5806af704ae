"""Scores (issue 16): writer speed, agreement with the folk community's ABC tools, the engraved picture.

Run: .venv/bin/python bench/scores.py [--n 200] [--json out.json] [--picture docs/score.png] [--cold 5]

1. Speed: ABC, MusicXML and the verovio SVG of 32-bar melodies from the shipped model (6/8, key G, seed k), after
   one warm-up, median over 20 melodies; and the three together (acceptance 5: <= 0.3 s).
2. Agreement (acceptance 1 and 2): the `n` melodies of tests/music_fixtures.score_melodies (random-weight models of
   every arch, 4/4, 3/4, 6/8, keys with sharps and flats and estimated keys, half with primers, a quarter with an
   exact repeat written between repeat signs): abc2midi notes equal to ours, abc2midi warnings/errors, abcm2ps
   errors (and its line-fill warnings, counted apart), our ABC reader's tokens equal, music21's MusicXML notes,
   time and key signature equal, accidentals the key signature makes unnecessary.
3. Cold `music generate` with the default formats (mid, wav, png, abc, svg): median wall time of `--cold` runs.
4. --picture: a PNG of one engraved score (Chromium via Playwright screenshots the SVG), for the README.
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
sys.path.insert(0, str(ROOT))

from app.music.generate import MelodyGenerator, write_abc, write_musicxml, write_svg  # noqa: E402


def speed(tmp: Path, count: int = 20) -> dict:
    gen = MelodyGenerator.load()
    melodies = [gen.generate(bars=32, key="G", time_signature="6/8", seed=k)[0] for k in range(count + 1)]
    out = {}
    for name, fn in (("abc", write_abc), ("musicxml", write_musicxml), ("svg", write_svg)):
        fn(melodies[0], tmp / f"warm.{name}")
        times = []
        for k, m in enumerate(melodies[1:]):
            t = time.perf_counter()
            fn(m, tmp / f"{k}.{name}")
            times.append(time.perf_counter() - t)
        out[f"{name}_s_median"] = round(statistics.median(times), 4)
    times = []
    for k, m in enumerate(melodies[1:]):
        t = time.perf_counter()
        for name, fn in (("abc", write_abc), ("musicxml", write_musicxml), ("svg", write_svg)):
            fn(m, tmp / f"all{k}.{name}")
        times.append(time.perf_counter() - t)
    out["abc_musicxml_svg_s_median"] = round(statistics.median(times), 4)
    out["abc_musicxml_svg_s_max"] = round(max(times), 4)
    out["bars"] = 32
    return out


def agreement(tmp: Path, n: int) -> dict:
    from music21 import converter

    from app.music.abctools import abc2midi_notes, abcm2ps_errors, accidental_problems, missing_tools
    from app.music.melody import ExtractConfig, Melody, melody_line
    from app.music.score import key_signature
    from app.music.sources import SourceFile, read_file
    from tests.music_fixtures import score_melodies

    if missing_tools():
        return {"skipped": f"missing {missing_tools()}"}
    counts = {"melodies": 0, "abc2midi_notes_equal": 0, "abc2midi_problems": 0, "abcm2ps_errors": 0,
              "abcm2ps_line_fill_warnings": 0, "own_reader_tokens_equal": 0, "music21_musicxml_equal": 0,
              "unnecessary_accidentals": 0, "folded_with_repeat_signs": 0, "notes": 0}
    for i, m in enumerate(score_melodies(n)):
        counts["melodies"] += 1
        counts["notes"] += len(m.notes())
        abc = write_abc(m, tmp / f"a{i}.abc")
        text = abc.read_text()
        counts["folded_with_repeat_signs"] += ":|" in text
        notes, problems = abc2midi_notes(abc)
        counts["abc2midi_notes_equal"] += notes == m.notes()
        counts["abc2midi_problems"] += len(problems)
        counts["abcm2ps_errors"] += len(abcm2ps_errors(abc))
        counts["abcm2ps_line_fill_warnings"] += len(abcm2ps_errors(abc, line_fill=True)) - len(abcm2ps_errors(abc))
        counts["unnecessary_accidentals"] += len(accidental_problems(text))
        pieces, _ = read_file(SourceFile(str(abc), abc.name))
        line, _ = melody_line(pieces[0], ExtractConfig(min_pitch=0, max_pitch=127))
        counts["own_reader_tokens_equal"] += bool(np.array_equal(m.codec.encode(Melody.from_notes(line)),
                                                                 m.codec.encode(Melody.from_notes(m.notes()))))
        sc = converter.parse(str(write_musicxml(m, tmp / f"x{i}.musicxml")))
        got = [(n_.pitch.midi, float(n_.offset), float(n_.offset + n_.quarterLength))
               for n_ in sc.expandRepeats().stripTies().flatten().notes]
        ts = sc.recurse().getElementsByClass("TimeSignature")[0]
        ks = sc.recurse().getElementsByClass("KeySignature")[0]
        want_key = key_signature(m.key) if m.key else None
        counts["music21_musicxml_equal"] += (got == [(p, s / 4, e / 4) for p, s, e in m.notes()]
                                             and (ts.numerator, ts.denominator) == m.time_signature
                                             and (want_key is None or ks.sharps == want_key.fifths))
    return counts


def cold_generate(tmp: Path, runs: int) -> dict:
    """Cold `music generate` (a new process each time) with the default formats, and with the three formats of
    before (mid,wav,png) interleaved with it, so both see the same machine load."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    times: dict[str, list[float]] = {"default (mid,wav,png,abc,svg)": [], "mid,wav,png": []}
    for k in range(runs):
        for label, extra in (("default (mid,wav,png,abc,svg)", []), ("mid,wav,png", ["--formats", "mid,wav,png"])):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "app", "music", "generate", "--out-dir", str(tmp / "cold"),
                            "--seed", str(k), *extra], check=True, capture_output=True, env=env, cwd=tmp)
            times[label].append(time.perf_counter() - t)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"runs": runs, "load_average_1min_after": load,
            **{label: {"median_s": round(statistics.median(v), 3), "min_s": round(min(v), 3)}
               for label, v in times.items()}}


def picture(path: Path, tmp: Path) -> dict:
    from playwright.sync_api import sync_playwright

    gen = MelodyGenerator.load()
    (m,) = gen.generate(bars=16, key="D", time_signature="6/8", seed=11, temperature=0.9)
    svg = write_svg(m, tmp / "pic.svg", title="models/folk, 6/8, D major, seed 11").read_text()
    html = tmp / "pic.html"
    html.write_text(f"<html><body style='margin:0;background:white'>{svg}</body></html>")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1100, "height": 400})
        page.goto(html.as_uri())
        page.locator("svg").first.screenshot(path=str(path))
        b.close()
    return {"picture": str(path), "bars": 16}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="melodies checked by abc2midi/abcm2ps/readers")
    ap.add_argument("--cold", type=int, default=5, help="cold `music generate` runs (0: skip)")
    ap.add_argument("--picture", help="write a PNG of an engraved score here")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t = time.perf_counter()
        result = {"speed": speed(tmp)}
        if args.n:
            result["agreement"] = agreement(tmp, args.n)
            result["agreement_s"] = round(time.perf_counter() - t, 1)
        if args.cold:
            result["cold_generate"] = cold_generate(tmp, args.cold)
        if args.picture:
            result.update(picture(Path(args.picture), tmp))
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

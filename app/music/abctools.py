"""The folk community's ABC tools as checks of what we write: abc2midi (Debian `abcmidi`) and abcm2ps.

`abc2midi_notes(abc_path, spq)` converts an .abc with abc2midi and returns its notes on our grid plus every line
abc2midi printed that is a warning or an error; `abcm2ps_errors(abc_path)` engraves it with abcm2ps and returns its
error lines. `accidental_problems(abc_text)` lists accidentals the key signature (and the bar so far) makes
unnecessary. Used by the tests and bench/scores.py; nothing in generation needs these tools.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

TOOLS = ("abc2midi", "abcm2ps")
_PROBLEM = re.compile(r"\b(warning|error)\b", re.IGNORECASE)


def missing_tools() -> list[str]:
    """The tools of TOOLS not found on PATH."""
    return [t for t in TOOLS if shutil.which(t) is None]


def abc2midi_notes(abc_path: str | Path, spq: int = 4, timeout: float = 30.0
                   ) -> tuple[list[tuple[int, int, int]], list[str]]:
    """abc2midi's MIDI rendering of the first tune in `abc_path`: ([(pitch, start step, end step)], problems).

    problems: abc2midi's warning/error lines, and any note whose time is more than one MIDI tick off the grid of
    `spq` steps per quarter. (abc2midi starts every note one tick late -- at 480 ticks per quarter, 1/120 of a
    sixteenth -- and ends it on time; times are rounded to the grid within that tick.)
    """
    import pretty_midi

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mid"
        run = subprocess.run(["abc2midi", str(abc_path), "-o", str(out)], capture_output=True, text=True,
                             timeout=timeout)
        text = run.stdout + run.stderr
        problems = [line for line in text.splitlines() if _PROBLEM.search(line)]
        if run.returncode != 0 or not out.exists():
            return [], problems + [f"abc2midi exit status {run.returncode}, no MIDI written"]
        pm = pretty_midi.PrettyMIDI(str(out))
    notes = []
    for inst in pm.instruments:
        for n in inst.notes:
            on = Fraction(pm.time_to_tick(n.start) * spq, pm.resolution)
            off = Fraction(pm.time_to_tick(n.end) * spq, pm.resolution)
            tick = Fraction(spq, pm.resolution)
            if abs(on - round(on)) > tick or abs(off - round(off)) > tick:
                problems.append(f"note {n.pitch} at step {float(on):g}..{float(off):g} is off the grid")
            notes.append((int(n.pitch), int(round(on)), int(round(off))))
    return sorted(notes, key=lambda n: (n[1], n[0])), problems


LINE_FILL = re.compile(r"warning: Line (overfull|underfull)")


def abcm2ps_errors(abc_path: str | Path, timeout: float = 30.0, line_fill: bool = False) -> list[str]:
    """abcm2ps's error and warning lines for `abc_path` (engraved to a throw-away PostScript file); [] if clean.
    Its line-fill warnings ("Line overfull/underfull": a printed line a few points too full or too empty for the
    page, a layout remark, not a reading problem) are left out unless line_fill=True."""
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run(["abcm2ps", str(abc_path), "-O", str(Path(tmp) / "out.ps")], capture_output=True,
                             text=True, timeout=timeout)
    text = run.stdout + run.stderr
    problems = [line for line in text.splitlines()
                if _PROBLEM.search(line) and (line_fill or not LINE_FILL.search(line))]
    if run.returncode != 0:
        problems.append(f"abcm2ps exit status {run.returncode}")
    return problems


_NOTE = re.compile(r"([_^=]?)([A-Ga-g])([,']*)")


def accidental_problems(abc_text: str) -> list[str]:
    """Accidentals in an ABC tune body that the key signature makes unnecessary: the K: signature gives the letter
    that alteration and no earlier note of the bar (in any octave) altered the letter otherwise. Understands the
    K: values we write (app.music.score)."""
    from app.music.score import key_signature

    body, key = [], None
    for line in abc_text.splitlines():
        if re.match(r"^[A-Za-z]:", line):
            if line.startswith("K:"):
                key = key_signature(_key_name(line[2:].strip()))
            continue
        body.append(line)
    if key is None:
        return ["no K: line"]
    problems = []
    for b, bar in enumerate(re.split(r"\|", " ".join(body))):
        altered: dict[str, set[int]] = {}  # letter -> alterations written earlier in the bar (any octave)
        for acc, letter, octave in _NOTE.findall(re.sub(r'"[^"]*"', "", bar)):
            up = letter.upper()
            if acc:
                alter = {"^": 1, "_": -1, "=": 0}[acc]
                if alter == key.alteration(up) and not (altered.get(up, set()) - {alter}):
                    problems.append(f"bar {b + 1}: {acc}{letter}{octave} is what the key signature already says")
                altered.setdefault(up, set()).add(alter)
    return problems


def _key_name(abc_key: str) -> str:
    """ABC K: value as we write it ('Bb', 'F#m', 'DDor') -> our key syntax ('Bb', 'F#m', 'D dorian')."""
    m = re.match(r"^([A-G][#b]?)(.*)$", abc_key)
    tonic, mode = m.group(1), m.group(2).strip().lower()
    names = {"": "", "m": "m", "dor": " dorian", "phr": " phrygian", "lyd": " lydian", "mix": " mixolydian",
             "loc": " locrian"}
    return tonic + names[mode]

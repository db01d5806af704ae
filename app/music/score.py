"""A melody as a score people read: key, spelling, bars, ties, rests, repeats -> ABC and MusicXML text.

The melody (pitch, start step, end step notes on a grid of `spq` steps per quarter) is laid out once
(`layout`) and written by two small printers (`abc_text`, `musicxml_text`), so both formats show the same bars:

- **Key.** `key_signature(name)` turns a key name as `--key` takes it ("G", "Am", "D dorian", "Bb",
  "E minor-pentatonic") into a signature (fifths: sharps > 0, flats < 0), a mode and a spelled tonic; modes without
  a signature of their own (pentatonic, blues, harmonic/melodic minor) use their parent major or minor; a melody
  without a key (or "chromatic") gets a Krumhansl-Schmuckler key analysis of its notes (`estimate_signature`).
- **Spelling.** Each pitch is written with the letter the signature gives it when it is in the key; otherwise as a
  natural if one fits, else a sharp in sharp keys and a flat in flat keys (`spell`). An accidental is written only
  when the bar's state (signature, then earlier accidentals on that letter and octave in the bar) differs, so the
  signature never needs one repeated; a note tied into a new bar carries its accidental again. ABC readers differ on
  how far an accidental reaches (abc2midi: to the bar line, music21: that note only), so the ABC printer writes
  the accidental on every note off the key signature (never one the signature makes unnecessary).
- **Bars.** Bars follow the melody's time signature from step 0; a note crossing a bar line is split and tied, the
  last bar is filled with rests, and each note or rest inside a bar is cut into notatable values (plain or dotted)
  that stay inside a beat or run from beat to beat (dotted quarters in 6/8, quarters in 4/4 and 3/4).
- **Repeats** (`fold=True`): a 4- or 8-bar section that is immediately repeated exactly (same tokens, nothing tied
  into or out of either copy) is written once between repeat signs `|: ... :|`. Readers that play repeats (abc2midi,
  music21's expandRepeats, our corpus reader) get the same notes as the MIDI file, which is always written out.

Units: steps are grid steps (1/spq quarter note); durations in the printed files are exact fractions of a quarter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence
from xml.sax.saxutils import escape

from app.errors import OptionError

LETTERS = "CDEFGAB"
NATURAL_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SHARP_ORDER = "FCGDAEB"
# fifths of each mode's signature relative to the major key on the same tonic
MODE_FIFTHS = {"major": 0, "mixolydian": -1, "dorian": -2, "minor": -3, "phrygian": -4, "locrian": -5,
               "lydian": 1}
PARENT_MODE = {"harmonic-minor": "minor", "melodic-minor": "minor", "major-pentatonic": "major",
               "minor-pentatonic": "minor", "blues": "minor"}
ABC_MODE = {"major": "", "minor": "m", "dorian": "Dor", "phrygian": "Phr", "lydian": "Lyd", "mixolydian": "Mix",
            "locrian": "Loc"}
FOLD_LENGTHS = (8, 4)  # section lengths in bars tried for repeat signs, longest first


# --- key and spelling ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KeySig:
    """A key signature: fifths (-7..7; sharps > 0), mode (a MODE_FIFTHS key), tonic spelled as (letter, alter)."""

    fifths: int
    mode: str
    tonic: tuple[str, int]

    def alteration(self, letter: str) -> int:
        """-1, 0 or +1: what the signature does to `letter`."""
        if self.fifths > 0:
            return 1 if letter in SHARP_ORDER[: self.fifths] else 0
        if self.fifths < 0:
            return -1 if letter in SHARP_ORDER[::-1][: -self.fifths] else 0
        return 0

    @property
    def tonic_name(self) -> str:
        """'F#', 'Bb', 'C' ..."""
        letter, alter = self.tonic
        return letter + {1: "#", -1: "b", 0: ""}[alter]

    @property
    def abc(self) -> str:
        """The ABC K: value, e.g. 'G', 'Em', 'DDor', 'Bb'."""
        return self.tonic_name + ABC_MODE[self.mode]

    @property
    def label(self) -> str:
        """'G major', 'E minor', 'D dorian'."""
        return f"{self.tonic_name} {self.mode}"


def key_signature(name: str) -> KeySig | None:
    """Key name (app.music.scales syntax) -> KeySig, or None for 'chromatic' (no key to write: estimate one)."""
    from app.music.scales import parse_key

    tonic_pc, mode = parse_key(name)
    if mode == "chromatic":
        return None
    text = str(name).strip()
    return signature_for(tonic_pc, mode, {"#": 1, "b": -1}.get(text[1:2], 0) if len(text) > 1 else 0)


def signature_for(tonic_pc: int, mode: str, written_alter: int = 0) -> KeySig:
    """The signature of a key given by tonic pitch class and mode; written_alter (+1 '#', -1 'b', 0 none) picks
    between enharmonic keys (F# or Gb major); without it the key with fewer accidentals wins (sharps on a tie)."""
    mode = PARENT_MODE.get(mode, mode)
    fifths = ((tonic_pc * 7) % 12 + 5) % 12 - 5 + MODE_FIFTHS[mode]  # major key on the tonic (-5..6), the mode
    options = [f for f in (fifths - 12, fifths, fifths + 12) if -7 <= f <= 7]
    options.sort(key=lambda f: (0 if written_alter and (f > 0) == (written_alter > 0) else 1, abs(f), -f))
    sig = KeySig(options[0], mode, ("C", 0))
    return KeySig(sig.fifths, mode, spell(tonic_pc, sig)[:2])


def estimate_signature(notes: Sequence[tuple[int, int, int]]) -> KeySig:
    """Key of (pitch, start, end) notes by the Krumhansl-Schmuckler method (app.music.melody.estimate_key: the
    Krumhansl-Kessler profiles that music21's KrumhanslSchmuckler analysis uses, duration weighted; numpy only,
    so writing a score never imports music21)."""
    from app.music.melody import estimate_key

    tonic, mode = estimate_key(notes)
    return signature_for(tonic, mode)


def spell(pitch: int, sig: KeySig) -> tuple[str, int, int]:
    """MIDI pitch (or pitch class) -> (letter, alter -1..1, octave of the written letter) in the key of `sig`.

    In the key: the signature's letter. In minor (and dorian, phrygian) keys the raised 7th is the leading tone on the
    7th degree's letter (F# in G minor, not Gb), and in minor the raised 6th likewise (E natural in G minor).
    Otherwise: a natural where one fits, else the accidental in the direction of the signature (sharps in sharp keys
    and C major, flats in flat keys)."""
    pc = pitch % 12
    tonic_letter, tonic_alter = sig.tonic
    tonic_pc = NATURAL_PC[tonic_letter] + tonic_alter
    if sig.mode in ("minor", "dorian", "phrygian"):  # the raised 7th (leading tone) and, in minor, raised 6th
        degree = {(tonic_pc - 1) % 12: 6, (tonic_pc + 9) % 12: 5 if sig.mode == "minor" else None}.get(pc)
        if degree is not None:
            letter = LETTERS[(LETTERS.index(tonic_letter) + degree) % 7]
            alter = (pc - NATURAL_PC[letter] + 6) % 12 - 6
            if -1 <= alter <= 1:
                return letter, alter, (pitch - alter) // 12 - 1
    best = None
    for letter in LETTERS:
        for alter in (-1, 0, 1):
            if (NATURAL_PC[letter] + alter) % 12 != pc:
                continue
            if alter == sig.alteration(letter):
                cost = 0.0
            elif alter == 0:
                cost = 1.0
            else:
                cost = 1.1 if (alter > 0) == (sig.fifths >= 0) else 1.2
            if best is None or cost < best[0]:
                best = (cost, letter, alter)
    _, letter, alter = best
    octave = (pitch - alter) // 12 - 1
    return letter, alter, octave


# --- layout --------------------------------------------------------------------------------------------------------
@dataclass
class Item:
    """One written note or rest inside a bar: `length` steps; pitch None = rest; tie_start/tie_stop flags;
    accidental: the alter to print (None = nothing printed; 0 prints a natural)."""

    pitch: int | None
    length: int
    tie_start: bool = False
    tie_stop: bool = False
    spelled: tuple[str, int, int] | None = None
    accidental: int | None = None


@dataclass
class Bar:
    items: list[Item] = field(default_factory=list)
    repeat_start: bool = False
    repeat_end: bool = False


@dataclass
class Layout:
    """What both printers write: bars (with repeat flags), the key, the metre, the grid and the tempo."""

    bars: list[Bar]
    key: KeySig
    time_signature: tuple[int, int]
    spq: int
    qpm: float
    bar_steps: int
    written_bars: int  # bars of music as played (repeats written out)


def notatable(steps: int, spq: int) -> bool:
    """True if `steps` is a plain or single-dotted note value (whole, half, quarter, ... or dotted)."""
    q = Fraction(steps, spq)
    for base in (Fraction(4, 1) / (2 ** k) for k in range(0, 8)):
        if q == base or q == base * Fraction(3, 2):
            return True
    return False


def beat_steps(spq: int, time_signature: tuple[int, int]) -> int:
    """The beat in steps: a dotted quarter in compound metres (6/8, 9/8, 12/8), else one 1/den note."""
    num, den = time_signature
    if den == 8 and num % 3 == 0 and num >= 6:
        return max(1, spq * 3 // 2)
    return max(1, spq * 4 // den)


def split_value(steps: int, spq: int, pos: int = 0, beat: int | None = None) -> list[int]:
    """Cut a duration of `steps` starting at bar position `pos` into notatable pieces (tied when written), longest
    first, so that each piece either stays inside one beat or starts and ends on beats (a quarter across the
    middle of a 6/8 bar is written as two tied eighths, as a musician would); `beat` in steps (None: no beats)."""
    out = []
    while steps > 0:
        fallback = None
        for k in range(steps, 0, -1):
            if not notatable(k, spq):
                continue
            fallback = fallback or k
            if beat is None or pos // beat == (pos + k - 1) // beat or (pos % beat == 0 and (pos + k) % beat == 0):
                break
        else:
            k = fallback or steps  # below the grid's smallest value: cannot happen for spq powers of two and 3
        out.append(k)
        steps -= k
        pos += k
    return out


def _continues(ids_notes: list[tuple[int, int, int]], step: int) -> bool:
    """True if some note sounds across `step` (starts before it and ends after it)."""
    return any(s < step < e for _, s, e in ids_notes)


def fold_plan(notes: list[tuple[int, int, int]], n_bars: int, bar_steps: int) -> list[tuple[int, int, bool]]:
    """[(first bar, bars, repeated)] covering 0..n_bars: runs of bars, a repeated section being written once.

    A section of L in FOLD_LENGTHS bars is folded when the next L bars have exactly the same notes (relative to
    the section start), and no note crosses the section's start, middle or end."""
    by_bar: list[list[tuple[int, int, int]]] = [[] for _ in range(n_bars)]
    for p, s, e in notes:
        by_bar[min(s // bar_steps, n_bars - 1)].append((p, s, e))

    def section(i, length):
        lo = i * bar_steps
        return [(p, s - lo, e - lo) for b in range(i, i + length) for p, s, e in by_bar[b]]

    plan, i = [], 0
    while i < n_bars:
        for length in FOLD_LENGTHS:
            if i + 2 * length > n_bars:
                continue
            edges = (i * bar_steps, (i + length) * bar_steps, (i + 2 * length) * bar_steps)
            if any(_continues(notes, t) for t in edges):
                continue
            a = section(i, length)
            if a and a == section(i + length, length) and all(e <= length * bar_steps for _, _, e in a):
                plan.append((i, length, True))
                i += 2 * length
                break
        else:
            plan.append((i, 1, False))
            i += 1
    return plan


def layout(notes: Sequence[tuple[int, int, int]], *, steps: int, spq: int, time_signature: tuple[int, int],
           qpm: float, key: str | None = None, fold: bool = True) -> Layout:
    """Notes (pitch, start, end) in steps, monophonic, on a melody of `steps` steps -> Layout (module docstring)."""
    from app.music.metre import steps_per_bar

    notes = sorted(((int(p), int(s), int(e)) for p, s, e in notes), key=lambda n: n[1])
    bar_steps = steps_per_bar(spq, time_signature)
    beat = beat_steps(spq, tuple(time_signature))
    end = max([steps] + [e for _, _, e in notes])
    n_bars = max(1, -(-end // bar_steps))
    sig = key_signature(key) if key else None
    if sig is None:
        sig = estimate_signature(notes)
    # the played bars, each a list of (pitch or None, start, end) segments inside the bar
    segs: list[list[tuple[int | None, int, int, bool, bool]]] = [[] for _ in range(n_bars)]
    t = 0
    for p, s, e in notes + [(None, n_bars * bar_steps, n_bars * bar_steps)]:
        if s > t:  # a rest from t to s
            for b in range(t // bar_steps, -(-s // bar_steps)):
                lo, hi = max(t, b * bar_steps), min(s, (b + 1) * bar_steps)
                if hi > lo:
                    segs[b].append((None, lo, hi, False, False))
        if p is None:
            break
        for b in range(s // bar_steps, -(-e // bar_steps)):
            lo, hi = max(s, b * bar_steps), min(e, (b + 1) * bar_steps)
            segs[b].append((p, lo, hi, lo > s, hi < e))
        t = max(t, e)
    plan = fold_plan(notes, n_bars, bar_steps) if fold else [(i, 1, False) for i in range(n_bars)]
    bars: list[Bar] = []
    for first, count, repeated in plan:
        for b in range(first, first + count):
            bar = Bar(repeat_start=repeated and b == first, repeat_end=repeated and b == first + count - 1)
            state: dict[tuple[str, int], int] = {}
            for p, lo, hi, tied_in, tied_out in segs[b]:
                pieces = split_value(hi - lo, spq, lo - b * bar_steps, beat)
                for k, length in enumerate(pieces):
                    item = Item(p, length, tie_start=(p is not None) and (tied_out or k < len(pieces) - 1),
                                tie_stop=(p is not None) and (tied_in or k > 0))
                    if p is not None:
                        letter, alter, octave = item.spelled = spell(p, sig)
                        current = state.get((letter, octave), sig.alteration(letter))
                        if alter != current or (tied_in and k == 0 and alter != sig.alteration(letter)):
                            item.accidental = alter
                        state[(letter, octave)] = alter
                    bar.items.append(item)
            bars.append(bar)
    return Layout(bars, sig, tuple(time_signature), spq, float(qpm), bar_steps, n_bars)


def melody_layout(melody, *, fold: bool = True) -> Layout:
    """Layout of an app.music.generate.GeneratedMelody (its notes, metre, grid, tempo and key)."""
    return layout(melody.notes(), steps=len(melody.ids), spq=melody.steps_per_quarter,
                  time_signature=tuple(melody.time_signature), qpm=melody.qpm,
                  key=getattr(melody, "key", None), fold=fold)


# --- ABC -----------------------------------------------------------------------------------------------------------
def _abc_length(steps: int, spq: int, unit: Fraction) -> str:
    """Length suffix relative to the L: unit (a fraction of a whole note)."""
    r = Fraction(steps, 4 * spq) / unit
    if r == 1:
        return ""
    if r.denominator == 1:
        return str(r.numerator)
    if r.numerator == 1:
        return "/" if r.denominator == 2 else f"/{r.denominator}"
    return f"{r.numerator}/{r.denominator}"


def _abc_pitch(letter: str, octave: int) -> str:
    if octave >= 5:
        return letter.lower() + "'" * (octave - 5)
    return letter + "," * (4 - octave)


def abc_text(lay: Layout, *, title: str = "Generated melody", number: int = 1, bars_per_line: int = 4,
             notes_per_line: int = 28) -> str:
    """ABC 2.1 text of a layout: X, T, M, L:1/8, Q:1/4=qpm, K, then `bars_per_line` bars a line (a line ends
    earlier once it holds `notes_per_line` notes and rests, so dense bars still fit a printed line)."""
    num, den = lay.time_signature
    unit = Fraction(1, 8)
    qpm = f"{lay.qpm:g}" if float(lay.qpm).is_integer() else f"{int(round(lay.qpm))}"
    head = [f"X:{number}", f"T:{title}", f"M:{num}/{den}", "L:1/8", f"Q:1/4={qpm}", f"K:{lay.key.abc}"]
    lines, line, in_line, items = [], "", 0, 0
    for k, bar in enumerate(lay.bars):
        if k == 0 and bar.repeat_start:
            line = "|: "
        tokens, state = [], {}
        # notes written without a space between them are beamed (ABC's rule): the MusicXML's beam groups
        joined = {i for i, b in beams(bar, lay.spq, beat_steps(lay.spq, lay.time_signature)).items()
                  if b[0][1] in ("begin", "continue")}
        for it in bar.items:
            length = _abc_length(it.length, lay.spq, unit)
            if it.pitch is None:
                tokens.append("z" + length)
                continue
            letter, alter, octave = it.spelled
            # ABC readers differ on how far an accidental reaches (abc2midi: the rest of the bar; music21: that
            # note only), so every note off the key signature carries its accidental, and a note back on the
            # signature gets a natural/sharp/flat only after the bar altered that letter (in any octave)
            in_key = alter == lay.key.alteration(letter)
            acc = None if in_key and all(a == alter for (l, o), a in state.items() if l == letter) else alter
            state[(letter, octave)] = alter
            sign = "" if acc is None else {1: "^", -1: "_", 0: "="}[acc]
            tokens.append(sign + _abc_pitch(letter, octave) + length + ("-" if it.tie_start else ""))
        line += "".join(t + ("" if i in joined or i == len(tokens) - 1 else " ") for i, t in enumerate(tokens))
        last = k == len(lay.bars) - 1
        opens = not last and lay.bars[k + 1].repeat_start
        if bar.repeat_end:
            line += " :|:" if opens else " :|"
        else:
            line += " |:" if opens else " |]" if last else " |"
        in_line, items = in_line + 1, items + len(bar.items)
        if last or in_line >= bars_per_line or items + len(lay.bars[k + 1].items) > notes_per_line:
            lines.append(line.strip())
            line, in_line, items = "", 0, 0
        else:
            line += " "
    return "\n".join(head + lines) + "\n"


# --- MusicXML ------------------------------------------------------------------------------------------------------
_TYPES = [(Fraction(4), "whole"), (Fraction(2), "half"), (Fraction(1), "quarter"), (Fraction(1, 2), "eighth"),
          (Fraction(1, 4), "16th"), (Fraction(1, 8), "32nd"), (Fraction(1, 16), "64th"), (Fraction(1, 32), "128th")]


def _note_type(steps: int, spq: int) -> tuple[str, bool]:
    q = Fraction(steps, spq)
    for base, name in _TYPES:
        if q == base:
            return name, False
        if q == base * Fraction(3, 2):
            return name, True
    raise OptionError(f"a note of {q} quarter notes cannot be written as one value")


def beams(bar: Bar, spq: int, beat: int) -> dict[int, list[tuple[int, str]]]:
    """MusicXML beams of a bar: item index -> [(beam level, "begin"/"continue"/"end"/"forward hook"/"backward
    hook")]. Notes shorter than a quarter are beamed within a beat (a dotted quarter in 6/8); rests break beams;
    level 2 joins runs of sixteenths (or shorter) inside such a group."""
    out: dict[int, list[tuple[int, str]]] = {}
    groups: list[list[int]] = []
    pos, last_beat = 0, None
    for i, it in enumerate(bar.items):
        short = it.pitch is not None and it.length < spq
        if short and groups and last_beat == pos // beat and groups[-1][-1] == i - 1:
            groups[-1].append(i)
        elif short:
            groups.append([i])
        last_beat = pos // beat
        pos += it.length
    for g in (g for g in groups if len(g) > 1):
        for k, i in enumerate(g):
            out[i] = [(1, "begin" if k == 0 else "end" if k == len(g) - 1 else "continue")]
        k = 0
        while k < len(g):  # level 2: runs of notes shorter than an eighth
            if bar.items[g[k]].length * 2 >= spq:
                k += 1
                continue
            j = k
            while j + 1 < len(g) and bar.items[g[j + 1]].length * 2 < spq:
                j += 1
            if j > k:
                for m in range(k, j + 1):
                    out[g[m]].append((2, "begin" if m == k else "end" if m == j else "continue"))
            else:
                out[g[k]].append((2, "forward hook" if k == 0 else "backward hook"))
            k = j + 1
    return out


def musicxml_text(lay: Layout, *, title: str = "Generated melody", program: int = 0) -> str:
    """MusicXML 4.0 (partwise) text of a layout: one part, divisions = steps per quarter, key, time, treble clef,
    metronome mark, ties, accidentals, repeat barlines."""
    num, den = lay.time_signature
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
           '"http://www.musicxml.org/dtds/partwise.dtd">',
           '<score-partwise version="4.0">',
           f"<work><work-title>{escape(title)}</work-title></work>",
           '<part-list><score-part id="P1"><part-name>Melody</part-name>'
           f'<midi-instrument id="P1-I1"><midi-program>{int(program) + 1}</midi-program></midi-instrument>'
           "</score-part></part-list>",
           '<part id="P1">']
    mode = lay.key.mode
    for k, bar in enumerate(lay.bars):
        out.append(f'<measure number="{k + 1}">')
        if bar.repeat_start:
            out.append('<barline location="left"><bar-style>heavy-light</bar-style>'
                       '<repeat direction="forward"/></barline>')
        if k == 0:
            out.append(f"<attributes><divisions>{lay.spq}</divisions>"
                       f"<key><fifths>{lay.key.fifths}</fifths><mode>{mode}</mode></key>"
                       f"<time><beats>{num}</beats><beat-type>{den}</beat-type></time>"
                       "<clef><sign>G</sign><line>2</line></clef></attributes>")
            out.append('<direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>'
                       f"<per-minute>{lay.qpm:g}</per-minute></metronome></direction-type>"
                       f'<sound tempo="{lay.qpm:g}"/></direction>')
        whole_rest = len(bar.items) == 1 and bar.items[0].pitch is None and bar.items[0].length == lay.bar_steps
        bar_beams = beams(bar, lay.spq, beat_steps(lay.spq, lay.time_signature))
        for i, it in enumerate(bar.items):
            parts = ["<note>"]
            if it.pitch is None:
                parts.append('<rest measure="yes"/>' if whole_rest else "<rest/>")
            else:
                letter, alter, octave = it.spelled
                # a natural on a letter the key alters is written <alter>0</alter>: every tied piece of a note then
                # reads back as the same pitch (music21 joins ties only between equal pitches)
                written = alter or lay.key.alteration(letter)
                parts.append(f"<pitch><step>{letter}</step>" + (f"<alter>{alter}</alter>" if written else "")
                             + f"<octave>{octave}</octave></pitch>")
            parts.append(f"<duration>{it.length}</duration>")
            if it.tie_stop:
                parts.append('<tie type="stop"/>')
            if it.tie_start:
                parts.append('<tie type="start"/>')
            if not whole_rest:
                name, dotted = _note_type(it.length, lay.spq)
                parts.append(f"<type>{name}</type>" + ("<dot/>" if dotted else ""))
            if it.accidental is not None:
                parts.append(f"<accidental>{ {1: 'sharp', -1: 'flat', 0: 'natural'}[it.accidental] }</accidental>")
            parts += [f'<beam number="{n}">{kind}</beam>' for n, kind in bar_beams.get(i, ())]
            if it.tie_start or it.tie_stop:
                parts.append("<notations>" + ('<tied type="stop"/>' if it.tie_stop else "")
                             + ('<tied type="start"/>' if it.tie_start else "") + "</notations>")
            parts.append("</note>")
            out.append("".join(parts))
        if bar.repeat_end:
            out.append('<barline location="right"><bar-style>light-heavy</bar-style>'
                       '<repeat direction="backward"/></barline>')
        elif k == len(lay.bars) - 1:
            out.append('<barline location="right"><bar-style>light-heavy</bar-style></barline>')
        out.append("</measure>")
    out += ["</part>", "</score-partwise>"]
    return "\n".join(out) + "\n"

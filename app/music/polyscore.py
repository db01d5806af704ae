"""Polyphonic pieces as MusicXML on a piano grand staff (treble: notes from middle C up, bass: below), for
`write_musicxml` and the verovio engraving of app.music.polygen.GeneratedPiece.

Each staff is written as one chord voice: the staff's notes are cut at every onset and release of any of its
notes, at bar lines and at beats (app.music.score.split_value), so that all notes of a cut sound for the same time;
a note that goes on through a cut is tied to itself. Reading the file back and joining ties gives the piece's notes
exactly (pitch, onset and release on the grid; tests/test_music_polyscore.py checks this through music21). Units:
steps of 1/steps_per_quarter quarter note; divisions = steps per quarter. Key: the sampled one (`key`) or the
estimate of app.music.score.estimate_signature; notes spelled in it with app.music.score.spell.
"""

from __future__ import annotations

from typing import Sequence
from xml.sax.saxutils import escape

from app.music.metre import steps_per_bar
from app.music.score import _note_type, beat_steps, estimate_signature, key_signature, spell, split_value

SPLIT_PITCH = 60  # middle C and above on the treble staff
_ACC = {1: "sharp", -1: "flat", 0: "natural", 2: "double-sharp", -2: "flat-flat"}


def _cuts(notes: Sequence[tuple[int, int, int]], end: int, bar: int) -> list[int]:
    points = {0, end} | set(range(0, end, bar))
    for _, s, e in notes:
        points |= {s, e}
    return sorted(p for p in points if 0 <= p <= end)


def _staff_events(notes, end: int, bar: int, spq: int, beat: int) -> list[list[tuple]]:
    """Per bar: [(length, [(pitch, tie_stop, tie_start), ...] or [] for a rest), ...]."""
    bars: list[list[tuple]] = [[] for _ in range(end // bar)]
    cuts = _cuts(notes, end, bar)
    for a, b in zip(cuts, cuts[1:]):
        sounding = sorted(((p, s, e) for p, s, e in notes if s < b and e > a), key=lambda n: n[0])
        pieces = split_value(b - a, spq, a % bar, beat)
        pos = a
        for k, length in enumerate(pieces):
            lo, hi = pos, pos + length
            chord = [(p, s < lo, e > hi) for p, s, e in sounding]
            bars[lo // bar].append((length, chord))
            pos = hi
    return bars


def poly_musicxml_text(notes: Sequence[tuple[int, int, int]], *, steps: int, spq: int,
                       time_signature: tuple[int, int], qpm: float, key: str | None = None,
                       title: str = "Generated piece", program: int = 0) -> str:
    """MusicXML 4.0 of a polyphonic piece (notes (pitch, start, end) in steps) on a grand staff; the piece is
    padded with rests to whole bars."""
    notes = [(int(p), int(s), int(e)) for p, s, e in notes if e > s]
    bar = steps_per_bar(spq, time_signature)
    end = max([steps, 1] + [e for _, _, e in notes])
    end = -(-end // bar) * bar
    beat = beat_steps(spq, tuple(time_signature))
    sig = (key_signature(key) if key else None) or estimate_signature(notes)
    staves = [_staff_events([n for n in notes if n[0] >= SPLIT_PITCH], end, bar, spq, beat),
              _staff_events([n for n in notes if n[0] < SPLIT_PITCH], end, bar, spq, beat)]
    num, den = time_signature
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
           '"http://www.musicxml.org/dtds/partwise.dtd">',
           '<score-partwise version="4.0">', f"<work><work-title>{escape(title)}</work-title></work>",
           '<part-list><score-part id="P1"><part-name>Piano</part-name>'
           f'<midi-instrument id="P1-I1"><midi-program>{int(program) + 1}</midi-program></midi-instrument>'
           "</score-part></part-list>", '<part id="P1">']
    for k in range(end // bar):
        out.append(f'<measure number="{k + 1}">')
        if k == 0:
            out.append(f"<attributes><divisions>{spq}</divisions><key><fifths>{sig.fifths}</fifths>"
                       f"<mode>{sig.mode}</mode></key><time><beats>{num}</beats><beat-type>{den}</beat-type></time>"
                       "<staves>2</staves><clef number=\"1\"><sign>G</sign><line>2</line></clef>"
                       "<clef number=\"2\"><sign>F</sign><line>4</line></clef></attributes>")
            out.append('<direction placement="above"><direction-type><metronome><beat-unit>quarter</beat-unit>'
                       f"<per-minute>{qpm:g}</per-minute></metronome></direction-type>"
                       f'<sound tempo="{qpm:g}"/></direction>')
        for st, events in enumerate(staves, start=1):
            if st == 2:
                out.append(f"<backup><duration>{bar}</duration></backup>")
            state: dict[tuple[str, int], int] = {}  # accidentals in force in this bar and staff
            for length, chord in events[k]:
                name, dotted = _note_type(length, spq)
                kind = f"<type>{name}</type>" + ("<dot/>" if dotted else "")
                if not chord:
                    out.append(f"<note><rest/><duration>{length}</duration><voice>{st}</voice>{kind}"
                               f"<staff>{st}</staff></note>")
                    continue
                for j, (p, stop, start) in enumerate(chord):
                    letter, alter, octave = spell(p, sig)
                    current = state.get((letter, octave), sig.alteration(letter))
                    acc = f"<accidental>{_ACC[alter]}</accidental>" if alter != current else ""
                    state[(letter, octave)] = alter
                    ties = ('<tie type="stop"/>' if stop else "") + ('<tie type="start"/>' if start else "")
                    tied = ("<notations>" + ('<tied type="stop"/>' if stop else "")
                            + ('<tied type="start"/>' if start else "") + "</notations>") if stop or start else ""
                    written = alter or sig.alteration(letter)  # <alter>0</alter> for a natural: see score.py
                    pitch = (f"<pitch><step>{letter}</step>" + (f"<alter>{alter}</alter>" if written else "")
                             + f"<octave>{octave}</octave></pitch>")
                    out.append("<note>" + ("<chord/>" if j else "") + pitch + f"<duration>{length}</duration>"
                               + ties + f"<voice>{st}</voice>{kind}{acc}<staff>{st}</staff>{tied}</note>")
        if k == end // bar - 1:
            out.append('<barline location="right"><bar-style>light-heavy</bar-style></barline>')
        out.append("</measure>")
    out += ["</part>", "</score-partwise>"]
    return "\n".join(out) + "\n"


def piece_musicxml_text(piece, *, title: str = "Generated piece", key: str | None = None) -> str:
    """poly_musicxml_text of an app.music.polygen.GeneratedPiece."""
    return poly_musicxml_text(piece.notes(), steps=piece.steps, spq=piece.steps_per_quarter,
                              time_signature=tuple(piece.time_signature), qpm=float(piece.qpm), key=key,
                              title=title, program=piece.program)

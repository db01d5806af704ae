"""Polyphonic pieces as scores (issue 16 with issue 14): a grand staff in MusicXML that music21 reads back to the
same notes (ties joined), chords with different lengths, notes across bar lines and staves; verovio engraves it."""

from __future__ import annotations

import numpy as np
import pytest

from app.music.polyscore import poly_musicxml_text


def read_notes(path, spq=4):
    """(pitch, onset, release) in steps of every note of a MusicXML file, ties joined."""
    import music21

    segs = []
    for el in music21.converter.parse(str(path)).flatten().notes:
        on, off = round(float(el.offset) * spq), round(float(el.offset + el.quarterLength) * spq)
        for n in (el.notes if el.isChord else [el]):
            segs.append((n.pitch.midi, on, off, n.tie.type if n.tie else None))
    out = []
    for p, on, off, tie in sorted(segs):
        if out and out[-1][0] == p and out[-1][2] == on and out[-1][3] in ("start", "continue"):
            out[-1] = (p, out[-1][1], off, tie)
        else:
            out.append((p, on, off, tie))
    return sorted((p, a, b) for p, a, b, _ in out)


def random_piece(rng, bars=3, bar=16):
    notes = []
    for _ in range(int(rng.integers(6, 18))):
        s = int(rng.integers(0, bars * bar - 1))
        notes.append((int(rng.integers(36, 84)), s, int(min(bars * bar, s + rng.integers(1, 20)))))
    return sorted(set(notes))


@pytest.mark.parametrize("ts", [(4, 4), (3, 4), (6, 8)])
def test_grand_staff_reads_back_to_the_same_notes(tmp_path, ts):
    rng = np.random.default_rng(sum(ts))
    checked = 0
    for k in range(12):
        notes = random_piece(rng, bar={(4, 4): 16, (3, 4): 12, (6, 8): 12}[ts])
        if len({(p, s) for p, s, _ in notes}) < len(notes):
            continue
        # the same pitch twice at once is one note on a keyboard: keep pieces without such overlaps
        if any(a[0] == b[0] and a[1] < b[2] and b[1] < a[2] for a in notes for b in notes if a != b):
            continue
        path = tmp_path / f"p{k}.musicxml"
        path.write_text(poly_musicxml_text(notes, steps=48, spq=4, time_signature=ts, qpm=90, key="F"))
        assert read_notes(path) == sorted(notes)
        checked += 1
    assert checked >= 4


def test_chords_of_different_lengths_staves_and_key(tmp_path):
    import music21

    notes = [(60, 0, 8), (64, 0, 4), (67, 2, 6), (48, 0, 16), (72, 6, 20), (55, 16, 18), (70, 4, 6)]
    path = tmp_path / "p.musicxml"
    path.write_text(poly_musicxml_text(notes, steps=20, spq=4, time_signature=(4, 4), qpm=100, key="F"))
    assert read_notes(path) == sorted(notes)
    score = music21.converter.parse(str(path))
    assert len(score.parts) == 2  # a grand staff: music21 reads its two staves as two parts
    treble, bass = score.parts
    assert {n.pitch.midi for n in treble.flatten().notes for n in (n.notes if n.isChord else [n])} >= {60, 72}
    assert {n.pitch.midi for n in bass.flatten().notes for n in (n.notes if n.isChord else [n])} == {48, 55}
    assert score.flatten().getElementsByClass("KeySignature")[0].sharps == -1
    assert "<alter>-1</alter>" in path.read_text() and "<accidental>" not in path.read_text()  # Bb in F: no sign
    assert len(treble.getElementsByClass("Measure")) == 2  # 20 steps padded to two 4/4 bars


def test_generated_piece_engraves_on_a_grand_staff(tmp_path):
    pytest.importorskip("verovio")
    from app.music.engrave import svg_from_musicxml, svg_parts

    notes = [(60, 0, 8), (64, 0, 4), (67, 2, 6), (48, 0, 16), (72, 6, 20)]
    svg = svg_from_musicxml(poly_musicxml_text(notes, steps=32, spq=4, time_signature=(3, 4), qpm=100))
    parts = svg_parts(svg)
    assert parts["measure"] == 3 and parts["clef"] >= 2 and parts["meterSig"] >= 2  # both staves

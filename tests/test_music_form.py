"""Form and metre in the data (issue 10): repeats expanded to played order, metre changes kept on the grid, MIDI
metre round trip, and a corpus that mixes metres keeps each piece's own."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi
import pytest

from app.music.codec import MelodyCodec
from app.music.corpus import build_corpus, load_corpus
from app.music.melody import ExtractConfig, Melody, extract_melodies
from app.music.metre import bar_grid
from app.music.midi_io import read_melody, write_midi
from app.music.sources import RepeatMarks, SourceFile, played_order, read_file
from tests.music_fixtures import write

CFG = ExtractConfig(min_notes=4)
CODEC = MelodyCodec(CFG.min_pitch, CFG.max_pitch)

# |: A :| with first and second endings, after a one-beat pickup (G) that is not repeated.
ABC_VOLTAS = """X:1
T:Voltas
M:3/4
L:1/4
K:C
G |: c d e | f g a |1 g f e :|2 g3 |]
"""
PLAYED = [67, 72, 74, 76, 77, 79, 81, 79, 77, 76, 72, 74, 76, 77, 79, 81, 79]  # G, A, ending 1, A, ending 2
# a second ending with no end repeat before it: the repeats are malformed, so the written order is kept
ABC_MALFORMED = """X:2
T:Broken repeats
M:4/4
L:1/4
K:C
C D E F | G A B c |1 c B A G |2 c d e f |]
"""
WRITTEN = [60, 62, 64, 65, 67, 69, 71, 72, 72, 71, 69, 67, 72, 74, 76, 77]


def _pitches(melody: Melody) -> list[int]:
    return [p for p, _, _ in melody.notes()]


def marks(spec: str) -> list[RepeatMarks]:
    """One character group per measure: 's' start, 'e' end, digits = volta numbers, '.' nothing."""
    out = []
    for m in spec.split():
        out.append(RepeatMarks(start="s" in m, end=2 if "e" in m else 0,
                               endings=frozenset(int(c) for c in m if c.isdigit())))
    return out


@pytest.mark.parametrize("spec, expected", [
    ("s . e .", [0, 1, 2, 0, 1, 2, 3]),                          # |: a b c :| d
    (". e . e", [0, 1, 0, 1, 2, 3, 2, 3]),                      # a b :| c d :|  -> AABB, no start repeats
    ("s 1e 2 .", [0, 1, 0, 2, 3]),                               # |: a |1 b :|2 c | d
    ("s . 1 1e 2 s e", [0, 1, 2, 3, 0, 1, 4, 5, 6, 5, 6]),        # two-bar first ending, then |: B :|
    ("s 12e 3", [0, 1, 0, 1, 0, 2]),                             # |: a |1,2 b :|3 c  -> three passes
    (". . .", [0, 1, 2]),
])
def test_played_order_rules(spec, expected):
    assert played_order(marks(spec)) == expected


@pytest.mark.parametrize("spec", ["1 2 .", "s 1 2"])  # endings that a pass can never reach
def test_played_order_malformed_is_none(spec):
    assert played_order(marks(spec)) is None


def test_abc_voltas_expand_to_played_order_with_the_pickup_on_the_grid(tmp_path):
    path = write(tmp_path, "voltas.abc", ABC_VOLTAS)
    (piece,), skips = read_file(SourceFile(str(path), "voltas.abc"))
    assert skips == [] and piece.repeats == "expanded"
    m = extract_melodies(piece, CFG).melodies[0]
    assert _pitches(m) == PLAYED
    assert m.steps == 4 + 6 * 12  # pickup + six bars of 3/4 in played order
    assert m.metre_changes() == [(-8, 3, 4)]  # the one-beat pickup is the last beat of a 3/4 bar
    bar, pos = bar_grid(m.steps, 4, m.metre_changes())
    assert pos[0] == 8 and pos[4] == 0 and set(bar.tolist()) == {12}
    assert all(pos[s] == 0 for s in range(4, m.steps, 12))
    written = extract_melodies(piece.written, CFG).melodies[0]  # what the old reader gave: written order
    assert _pitches(written) == [67, 72, 74, 76, 77, 79, 81, 79, 77, 76, 79]


def test_abc_two_bar_endings_expand(tmp_path):
    """music21's ABC import spans a volta bracket by its first and last measure only: the measures between are
    under it too (O'Neill's tunes have many such endings)."""
    path = write(tmp_path, "long.abc", "X:3\nT:Long endings\nM:2/4\nL:1/4\nK:C\n"
                                       "|: C D | E F |1 G A | B c :|2 c B | A G |]\n")
    (piece,), _ = read_file(SourceFile(str(path), "long.abc"))
    assert piece.repeats == "expanded"
    assert _pitches(extract_melodies(piece, CFG).melodies[0]) == [60, 62, 64, 65, 67, 69, 71, 72,
                                                                   60, 62, 64, 65, 72, 71, 69, 67]


def test_malformed_repeats_keep_written_order_and_are_counted(tmp_path):
    path = write(tmp_path, "tunes/two.abc", ABC_VOLTAS + "\n" + ABC_MALFORMED)
    pieces, _ = read_file(SourceFile(str(path), "two.abc"))
    assert [p.repeats for p in pieces] == ["expanded", "not expanded"]
    assert _pitches(extract_melodies(pieces[1], CFG).melodies[0]) == WRITTEN
    report = build_corpus([str(tmp_path / "tunes")], tmp_path / "corpus", CFG, val_fraction=0.0, jobs=1,
                          progress=False).report
    rep = report["repeats"]
    assert (rep["pieces_with_repeats"], rep["expanded"], rep["not_expanded"]) == (2, 1, 1)
    assert rep["not_expanded_items"][0]["source"] == "tunes/two.abc#X:2"
    # written order: 4 + 4 bars of 3/4 (52 steps) + 4 bars of 4/4 (64); played adds the repeated A part (24)
    assert (rep["tokens_written_order"], rep["tokens_played_order"]) == (52 + 64, 76 + 64)
    assert report["tokens"] == 76 + 64


def test_fast_played_order_agrees_with_music21_expander_on_real_tunes():
    """Integration (music21's bundled O'Neill's 1850): our played order equals music21's Expander wherever the
    rules agree, i.e. every section after the first that ends in an end repeat has its own start repeat."""
    import warnings

    from music21 import converter, stream

    from app.music.sources import _music21_order, _scores, abc_parsing, music21_collection, repeat_marks, split_abc

    text = music21_collection("oneills1850")[0].read_text(encoding="latin-1")
    compared = 0
    for _, tune in split_abc(text)[:50]:
        with warnings.catch_warnings(), abc_parsing():
            warnings.simplefilter("ignore")
            score = _scores(converter.parse(tune, format="abc"))[0]
        measures = list((score.parts[0] if score.parts else score).getElementsByClass(stream.Measure))
        found, _ = repeat_marks(score, measures)
        ends = [k for k, mk in enumerate(found) if mk.end]
        if not ends or any(not any(found[j].start for j in range(a + 1, b + 1))
                           and not all(found[j].endings for j in range(a, b + 1)) for a, b in zip(ends, ends[1:])):
            continue  # `A :| B :|`: we play AABB, music21 AABAAB
        assert played_order(found) == _music21_order(score, measures)
        compared += 1
    assert compared >= 5


def _metre_midi(path, changes_q, notes):
    """A one-track MIDI file with time signatures at (quarter, num, den) and notes (pitch, on_q, off_q), 120 qpm."""
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    for q, num, den in changes_q:
        pm.time_signature_changes.append(pretty_midi.TimeSignature(num, den, q * 0.5))
    inst = pretty_midi.Instrument(program=73, name="flute")
    inst.notes = [pretty_midi.Note(velocity=90, pitch=p, start=a * 0.5, end=b * 0.5) for p, a, b in notes]
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue())
    return path


def test_metre_round_trip_through_midi(tmp_path):
    ids = CODEC.encode(Melody.from_notes([(60 + k % 12, 2 * k, 2 * k + 2) for k in range(36)]))
    metre = [(0, 3, 4), (24, 6, 8)]  # two bars of 3/4, then 6/8
    melody = CODEC.decode(ids, time_signature=metre)
    assert melody.time_signature == (3, 4) and melody.metre_changes() == metre
    back = read_melody(write_midi(melody, tmp_path / "m.mid"))
    assert back.metre_changes() == metre and back.time_signature == (3, 4)
    assert back.events == melody.events
    b1, p1 = bar_grid(len(ids), 4, metre)
    b2, p2 = bar_grid(len(ids), 4, back.metre_changes())
    assert np.array_equal(b1, b2) and np.array_equal(p1, p2)


def test_pickup_metre_round_trip_keeps_the_bar_lines(tmp_path):
    """A pickup (first change before step 0) is written as a short first bar; the grid read back is the same."""
    melody = CODEC.decode(CODEC.encode(Melody.from_notes([(67, 4 * k, 4 * k + 4) for k in range(10)])),
                          time_signature=[(-8, 3, 4)])
    back = read_melody(write_midi(melody, tmp_path / "pickup.mid"))
    assert back.metre_changes() == [(0, 1, 4), (4, 3, 4)]
    assert np.array_equal(bar_grid(40, 4, back.metre_changes())[1][4:], bar_grid(40, 4, [(-8, 3, 4)])[1][4:])


def test_corpus_mixing_metres_keeps_each_pieces_metre(tmp_path):
    src = tmp_path / "midi"
    jig = [(62 + k % 7, 0.5 * k, 0.5 * k + 0.5) for k in range(48)]           # 8 bars of 6/8
    reel = [(60 + k % 8, 0.5 * k, 0.5 * k + 0.5) for k in range(64)]         # 8 bars of 4/4
    for k in range(3):
        _metre_midi(src / f"jig{k}.mid", [(0, 6, 8)], [(p + k, a, b) for p, a, b in jig])
        _metre_midi(src / f"reel{k}.mid", [(0, 4, 4)], [(p + k, a, b) for p, a, b in reel])
    # 3/4 then 6/8 from quarter 6, and a long silence that splits the piece inside its 6/8 part
    mixed = [(64, q, q + 1) for q in range(12)] + [(65 + k % 3, 22.5 + 0.5 * k, 23 + 0.5 * k) for k in range(24)]
    _metre_midi(src / "mixed.mid", [(0, 3, 4), (6, 6, 8)], mixed)
    build_corpus([str(src)], tmp_path / "corpus", CFG, val_fraction=0.0, jobs=1, progress=False)
    c = load_corpus(tmp_path / "corpus")
    by_name = {}
    for ids, meta in zip(c.train, c.train_meta):
        by_name.setdefault(meta["name"], []).append((ids, meta))
    for k in range(3):
        assert by_name[f"midi/jig{k}.mid"][0][1]["metre"] == [[0, 6, 8]]
        assert by_name[f"midi/reel{k}.mid"][0][1]["metre"] == [[0, 4, 4]]
        assert by_name[f"midi/jig{k}.mid"][0][1]["time_signature"] == (6, 8)
    (first, m1), (second, m2) = by_name["midi/mixed.mid"]
    assert m1["metre"] == [[0, 3, 4], [24, 6, 8]] and m1["time_signature"] == (3, 4)
    # the second segment starts at quarter 22.5 = step 90, 66 steps into the 6/8 part: position 6 of a bar
    assert m2["metre"] == [[-6, 6, 8]] and m2["time_signature"] == (6, 8)
    assert bar_grid(len(second), 4, m2["metre"])[1][0] == 6
    metres = c.report["metres"]
    assert metres["pieces_by_first_metre"] == {"4/4": 3, "6/8": 3, "3/4": 1}
    assert metres["pieces_with_metre_changes"] == 1
    assert sum(metres["steps_by_metre"].values()) == c.report["tokens"]
    # training windows carry each step's bar length and position, aligned with X
    x, y, bar, pos = c.window_ids_with_metre(tx=20, stride=10)
    x0, y0 = c.window_ids(tx=20, stride=10)
    assert np.array_equal(x, x0) and np.array_equal(y, y0) and bar.shape == pos.shape == x.shape
    assert set(np.unique(bar).tolist()) == {12, 16}
    grids = c.bar_grids()
    k = next(i for i, m in enumerate(c.train_meta) if m["name"] == "midi/mixed.mid")
    assert np.array_equal(grids[k][1][:24] % 12, np.arange(24) % 12) and grids[k][0][24] == 12
    assert (pos < bar).all() and (pos >= 0).all()


def _three_bar_score(expressions):
    """A music21 score built in code: three one-beat bars C D E with repeat expressions {bar index: [objects]}."""
    from music21 import meter, note, stream

    part = stream.Part()
    for k, pitch in enumerate(["C4", "D4", "E4"]):
        m = stream.Measure(number=k + 1)
        if k == 0:
            m.insert(0, meter.TimeSignature("1/4"))
        m.append(note.Note(pitch, quarterLength=1))
        for e in expressions.get(k, []):
            m.insert(0, e)
        part.append(m)
    score = stream.Score()
    score.insert(0, part)
    return score


def test_repeat_expressions_go_to_music21_and_bad_ones_keep_written_order():
    from music21 import repeat

    from app.music.sources import piece_from_score

    cases = [({2: [repeat.DaCapo()]}, "expanded", [60, 62, 64, 60, 62, 64]),
             ({1: [repeat.Fine()], 2: [repeat.DaCapoAlFine()]}, "expanded", [60, 62, 64, 60, 62]),
             ({2: [repeat.DalSegno()]}, "not expanded", [60, 62, 64])]  # D.S. without a segno
    for expressions, status, pitches in cases:
        piece = piece_from_score(_three_bar_score(expressions), "t")
        assert piece.repeats == status and [n[0] for n in piece.tracks[0].notes] == pitches
    assert "music21 cannot expand" in piece.repeats_detail

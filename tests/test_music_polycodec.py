"""Polyphonic codec (issue 14, acceptance 2): exact inverse on the grid, property-tested, and through MIDI files."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.errors import DataError
from app.music.polycodec import STEP_ID, PolyCodec, canonical, piano_roll, roll_notes

CODEC = PolyCodec(36, 84)

notes_st = st.lists(st.tuples(st.integers(36, 84), st.integers(0, 40), st.integers(1, 48)), max_size=40).map(
    lambda ns: [(p, s, s + d) for p, s, d in ns])  # chords, overlaps, repeated notes, long notes (up to 48 steps)


def test_a_chord_held_under_a_moving_voice_encodes_step_by_step():
    notes = [(60, 0, 4), (64, 0, 2), (67, 2, 3), (67, 3, 4)]  # a held C, E then G re-struck
    ids = CODEC.encode(notes)
    tok = CODEC.vocab.decode(ids)
    assert tok == ["+64", "+60", "step", "=64", "=60", "step", "+67", "=60", "step", "+67", "=60", "step"]
    assert CODEC.decode_notes(ids) == (sorted(notes, key=lambda n: (n[1], -n[0])), 4)
    assert CODEC.steps_of(ids) == 4 and len(ids) == 4 + 2 + 4 + 1 + 1


@settings(max_examples=300, deadline=None)
@given(notes_st, st.integers(0, 8))
def test_decode_inverts_encode_on_the_grid(notes, tail):
    steps = max((e for _, _, e in notes), default=0) + tail
    ids = CODEC.encode(notes, steps)
    got, n_steps = CODEC.decode_notes(ids)
    assert n_steps == steps and got == canonical(notes)
    onset, sounding = piano_roll(notes, steps)
    g_on, g_snd = piano_roll(got, steps)
    assert (g_on == onset).all() and (g_snd == sounding).all()  # equal on the grid: onsets and sounding steps
    assert (CODEC.encode(got, steps) == ids).all()  # and the ids come back exactly
    assert len(ids) == steps + int(sounding.sum())


@settings(max_examples=200, deadline=None)
@given(notes_st)
def test_canonical_is_the_piano_roll_and_keeps_non_overlapping_notes(notes):
    c = canonical(notes)
    assert c == roll_notes(*piano_roll(notes)) and canonical(c) == c
    per_pitch = {}
    for p, s, e in sorted(notes, key=lambda n: n[1]):
        per_pitch.setdefault(p, []).append((s, e))
    if all(a[1] <= b[0] for spans in per_pitch.values() for a, b in zip(spans, spans[1:])):
        assert c == sorted(notes, key=lambda n: (n[1], -n[0], n[2]))  # nothing to merge: the notes themselves


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, CODEC.size - 1), max_size=120))
def test_any_id_list_decodes_and_its_notes_re_encode_stably(ids):
    notes, steps = CODEC.decode_notes(ids)
    assert all(36 <= p <= 84 and 0 <= s < e <= steps for p, s, e in notes)
    again = CODEC.encode(notes, steps)
    assert CODEC.decode_notes(again) == (notes, steps)


@settings(max_examples=100, deadline=None)
@given(notes_st, st.integers(-12, 12))
def test_transposition_moves_every_note(notes, k):
    ids = CODEC.encode(notes)
    moved = CODEC.transpose_ids(ids, k)
    if moved is None:
        assert any(not 36 <= p + k <= 84 for p, _, _ in notes)
    else:
        assert CODEC.decode_notes(moved)[0] == canonical([(p + k, s, e) for p, s, e in notes])


def test_vocabulary_round_trip_and_errors():
    assert PolyCodec.from_vocab(CODEC.vocab) == CODEC and CODEC.size == 1 + 2 * 49
    assert CODEC.token_pitch()[STEP_ID] == -1 and CODEC.token_pitch()[1] == 36 and CODEC.token_pitch()[-1] == 84
    assert CODEC.start_pitches()[50] == -1 and CODEC.start_pitches()[49] == 84
    from app.music.codec import MelodyCodec

    with pytest.raises(DataError, match="not a polyphonic vocabulary"):
        PolyCodec.from_vocab(MelodyCodec().vocab)
    with pytest.raises(DataError, match="outside the codec range"):
        CODEC.encode([(30, 0, 1)])
    with pytest.raises(DataError, match="token id outside"):
        CODEC.decode_notes([CODEC.size])


midi_notes_st = st.lists(st.tuples(st.integers(36, 84), st.integers(0, 40), st.integers(1, 40)), min_size=1,
                         max_size=30).map(lambda ns: canonical([(p, s, s + d) for p, s, d in ns]))


@settings(max_examples=40, deadline=None)
@given(midi_notes_st)
def test_midi_to_tokens_to_midi_is_equal_on_the_grid(tmp_path_factory, notes):
    """MIDI built in code (one track per voice) -> our reader -> quantise -> tokens -> notes -> our MIDI writer
    -> reader again: the same notes on the grid (pitch, onset, offset)."""
    from app.music.melody import quantise
    from app.music.midi_io import read_midi
    from app.music.polygen import write_notes_midi
    from tests.music_fixtures import midi_bytes

    spq = 4
    tracks = [{"notes": [(p, s / spq, e / spq) for p, s, e in notes[k::2]], "name": f"v{k}"} for k in range(2)]
    folder = tmp_path_factory.mktemp("m")
    src = folder / "in.mid"
    src.write_bytes(midi_bytes([t for t in tracks if t["notes"]], qpm=100))
    piece = read_midi(src)
    grid = canonical(quantise([n for t in piece.tracks for n in t.notes], spq))
    assert grid == notes
    ids = CODEC.encode(grid)
    back, steps = CODEC.decode_notes(ids)
    out = write_notes_midi(back, folder / "out.mid", steps_per_quarter=spq, qpm=100)
    again = canonical(quantise([n for t in read_midi(out).tracks for n in t.notes], spq))
    assert again == notes


def test_polyphony_features_of_a_hand_made_piece():
    from app.music.polyreport import compare, piece_features, set_features

    notes = [(60, 0, 4), (64, 0, 2), (67, 0, 2), (72, 2, 4)]  # C E G chord, then C with a C held: 3 then 2 notes
    f = piece_features(notes, 8)  # 4 silent steps at the end
    assert f["sounding_per_step"] == (3 * 2 + 2 * 2) / 8
    assert f["chord_sizes"].tolist() == [0, 2, 2, 0, 0, 0, 0, 0]
    assert (f["voice_range"], f["lowest"], f["highest"]) == (12, 60, 72)
    assert f["pitch_classes"][[0, 4, 7]].tolist() == [2, 1, 1] and f["in_scale_rate"] == 1.0
    s = set_features([(notes, 8), ([(61, 0, 8)], 8)])
    assert s["pieces"] == 2 and s["notes"] == 5 and s["sounding_per_step"] == (f["sounding_per_step"] + 1) / 2
    assert abs(sum(s["chord_sizes"]) - 1) < 1e-3 and abs(sum(s["pitch_classes"]) - 1) < 1e-3
    same = compare(s, s, set_features([(notes, 8)]))
    assert same["sounding_ratio"] == 1 and same["in_scale_points"] == 0 and same["pitch_class_js_bits"] == 0
    assert all(same["goals"].values())
    far = compare(set_features([([(61, 0, 8), (66, 0, 8), (70, 0, 8)], 8)]), s, set_features([(notes, 8)]))
    assert not far["goals"]["sounding_within_30pct"] and not far["goals"]["pitch_class_js_within_1_5x"]

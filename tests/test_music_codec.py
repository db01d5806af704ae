"""Melody grid, extraction rules and the token codec: exact inverses and MIDI round trips."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.vocab import Vocabulary
from app.errors import DataError, OptionError
from app.music.codec import HOLD_ID, REST_ID, MelodyCodec, window_ids, windows
from app.music.melody import (HOLD, OFF, ExtractConfig, Melody, RawPiece, RawTrack, choose_track, estimate_key,
                              extract_melodies, fit_range, quantise, skyline, split_at_silences,
                              transposition_to_c)
from app.music.midi_io import read_melody, read_midi, write_midi
from tests.music_fixtures import TUNE, band_tracks, midi_bytes

CODEC = MelodyCodec(48, 96)


# --- codec layout ---------------------------------------------------------------------------------------------------
def test_vocabulary_layout_and_reload():
    v = CODEC.vocab
    assert (v.kind, v.n_special, v.tokens[:3]) == ("melody", 2, ("hold", "rest", "48"))
    assert v.size == 2 + 49 and v.id("60") == 2 + 60 - 48
    assert MelodyCodec.from_vocab(Vocabulary.from_json(v.to_json())) == CODEC
    with pytest.raises(DataError, match="not a melody vocabulary"):
        MelodyCodec.from_vocab(Vocabulary(("<pad>", "<bos>", "a"), 2, "names"))
    with pytest.raises(DataError, match="not consecutive"):
        MelodyCodec.from_vocab(Vocabulary(("hold", "rest", "60", "62"), 2, "melody"))


def test_encode_decode_known_sequence():
    m = Melody(events=(60, HOLD, OFF, HOLD, 62, 64, HOLD))
    ids = CODEC.encode(m)
    assert ids.dtype == np.int32
    assert ids.tolist() == [14, HOLD_ID, REST_ID, HOLD_ID, 16, 18, HOLD_ID]
    assert CODEC.decode(ids).events == m.events
    assert m.notes() == [(60, 0, 2), (62, 4, 5), (64, 5, 7)]


def test_encode_rejects_out_of_range_and_decode_rejects_foreign_ids():
    with pytest.raises(DataError, match="pitch 30 at step 1 is outside"):
        CODEC.encode(Melody(events=(60, 30)))
    with pytest.raises(DataError, match="token id outside"):
        CODEC.decode([0, 1, CODEC.size])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, CODEC.size - 1), max_size=200))
def test_ids_decode_encode_is_identity(ids):
    assert CODEC.encode(CODEC.decode(ids)).tolist() == ids


# Random monophonic melodies: (pitch, gap before the note, duration) in steps.
notes_strategy = st.lists(st.tuples(st.integers(48, 96), st.integers(0, 9), st.integers(1, 12)), min_size=1,
                          max_size=40)


def _melody(spec, **meta) -> Melody:
    notes, t = [], 0
    for p, gap, dur in spec:
        t += gap
        notes.append((p, t, t + dur))
        t += dur
    return Melody.from_notes(notes, **meta)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(notes_strategy, st.sampled_from([1, 2, 3, 4, 6, 8, 12]), st.sampled_from([60.0, 97.0, 120.0, 180.5]),
       st.sampled_from([(4, 4), (3, 4), (6, 8), (7, 8)]))
def test_melody_tokens_midi_file_tokens_round_trip(spec, spq, qpm, ts):
    """Acceptance 1: melody -> tokens -> .mid file -> read back -> tokens is the identical sequence."""
    m = _melody(spec, steps_per_quarter=spq, qpm=qpm, time_signature=ts, program=40)
    ids = CODEC.encode(m)
    with tempfile.TemporaryDirectory() as d:
        path = write_midi(CODEC.decode(ids, steps_per_quarter=spq, qpm=qpm, time_signature=ts, program=40),
                          Path(d) / "m.mid")
        back = read_melody(path, steps_per_quarter=spq)
    assert CODEC.encode(back).tolist() == ids.tolist()
    assert (back.time_signature, back.program) == (ts, 40)
    assert back.qpm == pytest.approx(qpm, rel=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, CODEC.size - 1), min_size=1, max_size=120))
def test_any_ids_survive_midi_in_canonical_form(ids):
    """Ids a model samples may hold redundant rests; MIDI keeps the notes, i.e. the canonical form."""
    m = CODEC.decode(ids)
    with tempfile.TemporaryDirectory() as d:
        path = write_midi(m, Path(d) / "x.mid")
        if not m.notes():
            with pytest.raises(DataError, match="no notes"):
                read_melody(path)
            return
        back = read_melody(path)
    assert back.notes() == m.notes()
    assert CODEC.encode(back).tolist() == CODEC.encode(m.canonical()).tolist()


@settings(max_examples=40, deadline=None)
@given(notes_strategy, st.sampled_from([50.0, 120.0, 143.0]), st.floats(-0.2, 0.2))
def test_quantised_performance_matches_at_grid_resolution(spec, qpm, jitter):
    """A MIDI melody played slightly off the grid (< half a step) reads back with the grid's pitches and onsets."""
    m = _melody(spec)
    shifted = [(p, max(0.0, (s + jitter) / 4), (e - 0.3) / 4) for p, s, e in m.notes()]
    piece = read_midi("perf.mid", data=midi_bytes([{"notes": shifted}], qpm=qpm))
    res = extract_melodies(piece, ExtractConfig(min_notes=1, split_silence=0))
    got = res.melodies[0].notes()
    t0 = m.notes()[0][1]
    assert [(p, s) for p, s, _ in got] == [(p, s - t0) for p, s, _ in m.notes()]


# --- extraction rules -----------------------------------------------------------------------------------------------
def test_quantise_rounds_to_grid_keeps_short_notes_and_drops_grace_notes():
    out = quantise([(60, 0.0, 0.1), (62, 1.13, 1.9), (64, 2.0, 2.0)], 4)
    assert out == [(60, 0, 1), (62, 5, 8)]


def test_skyline_keeps_top_voice():
    chords = [(48, 0, 8), (60, 0, 4), (64, 0, 4), (67, 0, 2),  # chord: 67 wins
              (55, 2, 4),  # starts while 64 of the chord still sounds: dropped (64 itself is not resumed)
              (72, 4, 6),  # 48 still sounds but is lower: 72 starts
              (76, 5, 8),  # higher note cuts 72 at 5
              (76, 6, 7),  # equal re-strike cuts the previous 76
              (70, 7, 9)]  # 76 ended at 7: a lower note may start again
    assert skyline(chords) == [(67, 0, 2), (72, 4, 5), (76, 5, 6), (76, 6, 7), (70, 7, 9)]
    assert skyline([(60, 0, 4), (62, 2, 3)]) == [(60, 0, 2), (62, 2, 3)]
    assert skyline([(60, 0, 2), (60, 0, 4), (62, 2, 3)]) == [(60, 0, 2), (62, 2, 3)]  # unison double stop


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(40, 90), st.integers(0, 30), st.integers(1, 8)), max_size=40))
def test_skyline_output_is_a_valid_monophonic_line(raw):
    """Any polyphony (chords, unisons, overlaps) reduces to notes that Melody.from_notes accepts."""
    line = skyline([(p, s, s + d) for p, s, d in raw])
    assert all(e > s for _, s, e in line)
    assert all(a[2] <= b[1] for a, b in zip(line, line[1:]))
    assert Melody.from_notes(line).notes() == line


def test_split_at_silences_and_shift_to_zero():
    notes = [(60, 2, 4), (62, 4, 6), (64, 22, 24), (65, 24, 30)]
    assert split_at_silences(notes, 16) == [[(60, 0, 2), (62, 2, 4)], [(64, 0, 2), (65, 2, 8)]]
    assert len(split_at_silences(notes, 0)) == 1
    assert len(split_at_silences(notes, 17)) == 1


def test_key_estimate_and_transposition():
    c_major = [(p, i, i + 1) for i, p in enumerate([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60])]
    assert estimate_key(c_major) == (0, "major")
    g_major = [(p + 7, s, e) for p, s, e in c_major]
    assert estimate_key(g_major) == (7, "major")
    assert transposition_to_c(g_major) == 5  # G -> C: +5 is a smaller move than -7
    a_minor = [(p, i, i + 2) for i, p in enumerate([57, 60, 64, 69, 67, 65, 64, 62, 60, 59, 57, 64, 57])]
    assert estimate_key(a_minor) == (9, "minor") and transposition_to_c(a_minor) == 0
    e_minor = [(p + 7, s, e) for p, s, e in a_minor]
    assert estimate_key(e_minor) == (4, "minor") and transposition_to_c(e_minor) == 5  # E minor -> A minor


def test_fit_range_clamp_and_drop_count():
    notes = [(40, 0, 1), (60, 1, 2), (100, 2, 3)]
    assert fit_range(notes, 48, 96, "clamp") == ([(52, 0, 1), (60, 1, 2), (88, 2, 3)], 2)
    assert fit_range(notes, 48, 96, "drop") == ([(60, 1, 2)], 2)


def test_choose_track_band_and_overrides():
    tracks = [RawTrack(t["name"], tuple(t["notes"]), t.get("program", 0), t.get("is_drum", False))
              for t in band_tracks()]
    assert choose_track(tracks, 4) == 2  # lead, not the busier bass or drums
    assert choose_track(tracks, 4, "BASS") == 1 and choose_track(tracks, 4, 0) == 0
    assert choose_track(tracks, 4, "vocals") is None and choose_track(tracks, 4, 7) is None


def test_extract_pipeline_transpose_split_and_counts():
    piece = RawPiece("t", (RawTrack("m", tuple(TUNE)),), qpm=90, time_signature=(3, 4))
    res = extract_melodies(piece, ExtractConfig(transpose="C", split_silence=0.5, min_notes=8))
    assert res.transposed_by == 5 and res.short_segments == 0 and len(res.melodies) == 2
    first = res.melodies[0]
    assert first.notes()[0] == (72, 0, 4) and first.qpm == 90 and first.time_signature == (3, 4)
    short = extract_melodies(piece, ExtractConfig(split_silence=0.5, min_notes=9))
    assert short.skip == "too short" and short.short_segments == 2
    dropped = extract_melodies(piece, ExtractConfig(min_pitch=80, max_pitch=96, out_of_range="drop"))
    assert dropped.skip == "no notes in range" and dropped.out_of_range == len(TUNE)


@pytest.mark.parametrize("kw", [{"steps_per_quarter": 0}, {"min_pitch": 60, "max_pitch": 65},
                                {"transpose": "D"}, {"out_of_range": "wrap"}, {"augment": 13},
                                {"split_silence": -1.0}, {"melody_track": 1.5}])
def test_extract_config_rejects_bad_options(kw):
    with pytest.raises(OptionError):
        ExtractConfig(**kw)


# --- windows --------------------------------------------------------------------------------------------------------
def test_windows_shapes_shift_and_piece_boundaries():
    a, b, short = np.arange(10, dtype=np.int32), np.arange(100, 106, dtype=np.int32), np.arange(3, dtype=np.int32)
    x, y = window_ids([a, b, short], tx=4, stride=2)
    assert x.shape == y.shape == (3 + 1, 4)  # a: starts 0,2,4; b: start 0; short: none
    assert (x[:, 1:] == y[:, :-1]).all()
    assert x[1].tolist() == [2, 3, 4, 5] and y[1].tolist() == [3, 4, 5, 6]
    assert x[3].tolist() == [100, 101, 102, 103]  # never mixes pieces
    ids = [np.array([0, 1, 2, 3, 4, 5], np.int32)]
    xo, yo = windows(ids, tx=3, vocab_size=6, stride=1)
    assert xo.shape == (3, 3, 6) and xo.dtype == np.float32
    assert (xo.argmax(-1) == window_ids(ids, 3)[0]).all() and (xo.sum(-1) == 1).all()
    assert (yo.argmax(-1) == window_ids(ids, 3)[1]).all()
    with pytest.raises(DataError):
        window_ids(ids, 0)


def test_transpose_ids_stays_in_range():
    ids = CODEC.encode(Melody(events=(60, HOLD, OFF, 94)))
    assert CODEC.decode(CODEC.transpose_ids(ids, 2)).events == (62, HOLD, OFF, 96)
    assert CODEC.transpose_ids(ids, 3) is None

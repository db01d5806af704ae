"""Melody features and copy checks on hand-built melodies with known answers (issue 6, acceptance 1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.music.codec import MelodyCodec
from app.music.copying import TrainingIndex, ngram_keys, pitches_of, window_hashes
from app.music.features import (events_from_ids, js_divergence, kde_overlap, piece_features, repetition,
                                set_distance, set_features, steps_per_bar)
from app.music.melody import HOLD, OFF, Melody, estimate_key

C_MAJOR = [60, 62, 64, 65, 67, 69, 71]


def quarters(pitches, spq: int = 4, start: int = 0) -> np.ndarray:
    """Events of pitches in consecutive quarter notes."""
    m = Melody.from_notes([(p, start + k * spq, start + (k + 1) * spq) for k, p in enumerate(pitches)])
    return np.array(m.events)


def test_c_major_scale():
    f = piece_features(quarters(C_MAJOR), steps_per_quarter=4, steps_per_bar=16)
    assert f["notes"] == 7 and f["steps"] == 28
    assert f["in_scale_rate"] == 1.0
    assert f["pitch_range"] == 11 and f["pitch_count"] == 7
    assert np.count_nonzero(f["pitch_class_hist"]) == 7
    np.testing.assert_allclose(f["pitch_class_hist"][[0, 2, 4, 5, 7, 9, 11]], 1 / 7)
    assert f["avg_interval"] == pytest.approx(11 / 6)  # 2 2 1 2 2 2 semitones
    ih = f["interval_hist"]
    assert ih[12 + 2] == pytest.approx(5 / 6) and ih[12 + 1] == pytest.approx(1 / 6) and ih.sum() == pytest.approx(1)
    assert f["avg_ioi"] == 1.0  # quarter notes
    assert f["note_density"] == 1.0  # notes per quarter note
    assert f["note_length_hist"][3] == 1.0  # every note lasts 4 steps
    assert np.isnan(f["repetition"])  # under 5 bars: no second 4-bar window


def test_rests_leaps_and_long_notes():
    # C4 (1 step), rest, G5 two octaves up (whole note + 1 step), back down to C4 (eighth note)
    notes = [(60, 0, 1), (84, 4, 21), (60, 21, 23)]
    f = piece_features(Melody.from_notes(notes).events, steps_per_quarter=4, steps_per_bar=16)
    assert f["avg_interval"] == 24.0 and f["pitch_range"] == 24 and f["pitch_count"] == 2
    ih = f["interval_hist"]
    assert ih[0] == 0.5 and ih[-1] == 0.5  # -24 and +24 clipped into the end bins
    nl = f["note_length_hist"]
    assert len(nl) == 17 and nl[0] == pytest.approx(1 / 3) and nl[1] == pytest.approx(1 / 3)
    assert nl[16] == pytest.approx(1 / 3)  # longer than a whole note
    assert f["avg_ioi"] == pytest.approx((4 + 17) / 2 / 4)
    assert f["note_density"] == pytest.approx(3 / (23 / 4))


def test_leading_silence_does_not_count_in_density():
    ev = np.concatenate([[OFF] + [HOLD] * 7, quarters([60, 62])])
    f = piece_features(ev, 4, 16)
    assert f["note_density"] == 1.0 and f["notes"] == 2


def test_in_scale_rate_counts_notes_outside_the_estimated_key():
    melody = [60, 64, 67, 72, 67, 64, 60, 62, 65, 66]  # C major arpeggios and an F#
    notes = Melody.from_notes([(p, 4 * k, 4 * k + 4) for k, p in enumerate(melody)]).notes()
    assert estimate_key(notes) == (0, "major")
    assert piece_features(quarters(melody), 4, 16)["in_scale_rate"] == pytest.approx(0.9)
    a_minor = [69, 72, 76, 69, 71, 72, 74, 76, 77, 79, 80]  # A natural minor, then a G# (harmonic minor)
    f = piece_features(quarters(a_minor), 4, 16)
    assert f["in_scale_rate"] == pytest.approx(10 / 11)


def test_repetition_of_four_bar_windows():
    bar = [60, 62, 64, 65]  # one 4/4 bar of quarter notes
    phrase = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 60, 59]  # 4 different bars
    assert repetition(quarters(phrase * 2), 16) == pytest.approx(1 / 5)  # windows at bars 0..4: bar 4 repeats 0
    assert repetition(quarters(bar * 8), 16) == pytest.approx(4 / 5)  # every window after the first repeats
    assert repetition(quarters(phrase + phrase[::-1]), 16) == 0.0
    assert np.isnan(repetition(quarters(phrase), 16))
    # 6/8: 12-step bars
    assert steps_per_bar(4, (6, 8)) == 12 and steps_per_bar(4, (3, 4)) == 12 and steps_per_bar(4, (2, 2)) == 16
    assert repetition(quarters([60, 62, 64] * 8), 12) == pytest.approx(4 / 5)


def test_events_from_ids_and_empty_pieces():
    codec = MelodyCodec(48, 96)
    ev = quarters(C_MAJOR)
    np.testing.assert_array_equal(events_from_ids(codec.encode(Melody(tuple(ev))), codec), ev)
    f = piece_features(np.array([OFF, HOLD, HOLD]), 4, 16)
    assert f["notes"] == 0 and np.isnan(f["pitch_count"]) and np.isnan(f["in_scale_rate"])
    assert f["pitch_class_hist"].sum() == 0
    sf = set_features([ev, ev], 4, [16, 16])
    assert sf["pitch_range"].tolist() == [11, 11] and sf["pitch_class_hist"].shape == (2, 12)


def test_distances():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=400), rng.normal(size=400)
    assert kde_overlap(a, a) == pytest.approx(1.0, abs=1e-3)
    assert kde_overlap(a, b) > 0.85
    assert kde_overlap(a, b + 1) == pytest.approx(0.617, abs=0.06)  # two unit normals one sigma apart
    assert kde_overlap(np.zeros(20), np.full(20, 10.0)) == pytest.approx(0.0, abs=1e-6)
    assert kde_overlap(np.ones(5), np.ones(7)) == 1.0
    mostly_zero = np.r_[np.zeros(190), rng.uniform(0.1, 0.3, 10)]
    assert kde_overlap(np.zeros(200), mostly_zero) > 0.9  # a point mass against nearly the same point mass
    assert np.isnan(kde_overlap(np.array([np.nan]), a))
    assert set_distance("pitch_range", a, a) == pytest.approx(0.0, abs=1e-3)
    assert js_divergence(np.array([1.0, 0]), np.array([0.0, 1])) == pytest.approx(1.0)
    h = np.array([[0.5, 0.5, 0], [0, 0.5, 0.5]])
    assert set_distance("pitch_class_hist", h, h[::-1]) == pytest.approx(0.0)
    assert set_distance("pitch_class_hist", h[:1], h[1:]) == pytest.approx(0.5)


# --- copying -------------------------------------------------------------------------------------------------------
def test_a_melody_copied_from_a_training_piece_has_copy_rate_one():
    tune = quarters([60, 62, 64, 65, 67, 65, 64, 62, 60, 67, 72, 71, 69, 67, 65, 64, 62, 60])
    other = quarters([50, 52, 53, 55, 57, 58, 60, 62, 63])
    index = TrainingIndex([other, tune], ["other", "tune"])
    res = index.check([tune], 16)
    assert res.ngram_rate == 1.0 and res.ngram_total[0] == 18 - 8 + 1
    assert res.phrase_rate == 1.0 and res.phrase_total[0] == 1  # 18 quarters = 4.5 bars: one 4-bar window
    assert res.longest_run[0] == 18 and res.longest_source == "tune"
    s = res.summary()
    assert s["ngram_copy_rate"] == 1.0 and s["longest_run_notes_max"] == 18 and s["longest_run_source"] == "tune"
    # an excerpt copied at any step of the training piece (not on its bar lines) is still a copied phrase
    excerpt = tune[6:6 + 64]
    assert index.phrase_matches(excerpt, 16) == (1, 1)
    # the same tune a semitone up copies nothing (matching is exact)
    up = np.where(tune >= 0, tune + 1, tune)
    res = index.check([up], 16)
    assert res.ngram_rate == 0.0 and res.phrase_rate == 0.0 and res.longest_run[0] <= 1


def test_copy_rate_counts_shared_ngrams_and_runs_never_cross_pieces():
    a = [60, 61, 62, 63, 64, 65, 66, 67, 68, 69]
    b = [70, 71, 72, 73, 74, 75, 76, 77, 78, 79]
    index = TrainingIndex([quarters(a), quarters(b)], ["a", "b"])
    # the last 6 notes of a then the first 6 of b: 12 consecutive notes of the concatenation, but 6 of one piece
    gen = quarters(a[-6:] + b[:6])
    res = index.check([gen], 16)
    assert res.longest_run[0] == 6 and res.ngram_found[0] == 0 and res.ngram_total[0] == 5
    # 9 notes of b then new notes: 2 of the 8-grams (b[0:8], b[1:9]) of the melody's 6 are in training
    gen2 = quarters(b[:9] + [50, 51, 52, 53, 54])
    res = index.check([gen, gen2], 16)
    assert res.ngram_found.tolist() == [0, 2] and res.ngram_total.tolist() == [5, 7]
    assert res.ngram_rate == pytest.approx(2 / 12)
    assert res.longest_run.tolist() == [6, 9] and res.longest_source == "b"


def test_empty_inputs():
    index = TrainingIndex([quarters([60, 62])], ["x"])
    res = index.check([np.array([OFF, HOLD]), quarters([60])], 16)
    assert res.ngram_total.tolist() == [0, 0] and np.isnan(res.ngram_rate) and res.summary()["ngram_copy_rate"] is None
    assert res.longest_run.tolist() == [0, 1]
    assert TrainingIndex([], []).check([quarters([60])], 16).longest_run.tolist() == [0]


def test_ngram_keys_are_exact():
    p = np.array([0, 127, 5, 127, 0, 1, 2, 3, 4, 5])
    keys = ngram_keys(p, 8)
    assert len(keys) == 3 and len(set(keys.tolist())) == 3
    assert ngram_keys(p[:7], 8).size == 0
    with pytest.raises(ValueError):
        ngram_keys(p, 10)
    assert window_hashes(np.array([1, 2, 1, 2]), 2).tolist()[0] == window_hashes(np.array([1, 2, 1, 2]), 2)[2]


def _naive_longest(gen: list[int], pieces: list[list[int]]) -> int:
    best = 0
    for piece in pieces:
        for i in range(len(gen)):
            for j in range(len(piece)):
                k = 0
                while i + k < len(gen) and j + k < len(piece) and gen[i + k] == piece[j + k]:
                    k += 1
                best = max(best, k)
    return best


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(60, 63), min_size=0, max_size=14), min_size=1, max_size=4),
       st.lists(st.lists(st.integers(60, 63), min_size=0, max_size=14), min_size=1, max_size=3))
def test_longest_run_and_ngrams_match_a_naive_search(pieces, gens):
    index = TrainingIndex([quarters(p) if p else np.zeros(0, np.int64) for p in pieces])
    events = [quarters(g) if g else np.zeros(0, np.int64) for g in gens]
    runs, _ = index.longest_runs([pitches_of(e) for e in events])
    assert runs.tolist() == [_naive_longest(g, pieces) for g in gens]
    train = {tuple(p[i:i + 3]) for p in pieces for i in range(len(p) - 2)}
    for g, e in zip(gens, events):
        grams = [tuple(g[i:i + 3]) for i in range(len(g) - 2)]
        assert index.ngram_matches(pitches_of(e), 3) == (sum(x in train for x in grams), len(grams))

"""Form measures on hand-made melodies: bar lines from the metre, self-similarity, bar lookback, metre-aware
repetition and phrase copies (issue 10, measuring form)."""

from __future__ import annotations

import numpy as np
import pytest

from app.music.copying import TrainingIndex
from app.music.features import (FORM_FEATURES, bar_lines, bar_lookback, bar_self_similarity, piece_features,
                                repetition, set_features)
from app.music.melody import HOLD, OFF


def bar_of(pitches, step_len: int) -> list[int]:
    """One bar: each pitch held `step_len` steps."""
    out = []
    for p in pitches:
        out += [p] + [HOLD] * (step_len - 1)
    return out


A = bar_of([60, 62, 64, 65], 4)  # 4/4 bars of 16 steps at 4 steps per quarter
B = bar_of([67, 65, 64, 62], 4)
C = bar_of([72, 71, 69, 67], 4)
REST = [OFF] + [HOLD] * 15


def tune(*bars) -> np.ndarray:
    return np.array([e for b in bars for e in b], dtype=np.int64)


def test_bar_lines_follow_the_metre():
    assert bar_lines(50, 4, 16).tolist() == [0, 16, 32, 48]
    assert bar_lines(50, 4, [(0, 6, 8)]).tolist() == [0, 12, 24, 36, 48]
    assert bar_lines(48, 4, [(0, 3, 4)]).tolist() == [0, 12, 24, 36, 48]
    assert bar_lines(10, 4, 16).tolist() == [0]  # no complete bar
    # 3/4 then 4/4 from step 18: the bar cut short by the change counts, the incomplete last bar does not
    assert bar_lines(40, 4, [(0, 3, 4), (18, 4, 4)]).tolist() == [0, 12, 18, 34]
    assert bar_lines(50, 4, [(0, 3, 4), (18, 4, 4)]).tolist() == [0, 12, 18, 34, 50]


def test_self_similarity_of_aaba():
    s = bar_self_similarity(tune(A, A, B, A), 16)
    a = np.array([1, 1, 0, 1], bool)
    want = np.outer(a, a) | np.outer(~a, ~a)  # A bars equal each other, the B bar only itself
    assert s.shape == (4, 4) and np.array_equal(s, want)
    assert np.array_equal(s, s.T)


def test_self_similarity_leaves_silent_bars_dark_and_drops_the_incomplete_bar():
    s = bar_self_similarity(tune(A, REST, REST, A, A[:8]), 16)
    assert s.shape == (4, 4)
    assert s[0, 3] and s[3, 0] and s[0, 0]
    assert not s[1].any() and not s[:, 2].any()  # equal rests are not lit


def test_self_similarity_cuts_a_6_8_tune_into_12_step_bars():
    x = bar_of([60, 64, 67], 2) + bar_of([65, 64, 62], 4)[:6]  # 12 steps
    y = bar_of([72, 71, 69, 67, 65, 64], 2)
    ev = tune(x, y, x, y)
    s = bar_self_similarity(ev, bar_lines(len(ev), 4, [(0, 6, 8)]))
    assert s.shape == (4, 4) and s[0, 2] and s[1, 3] and not s[0, 1]
    assert bar_self_similarity(ev, 16).shape == (3, 3)  # 4/4 bars: 3 complete ones, none equal
    assert not (bar_self_similarity(ev, 16) & ~np.eye(3, dtype=bool)).any()


def test_bar_lookback_shares():
    ev = tune(A, A, B, A, C, A, B, A, A)  # 9 bars
    got = bar_lookback(ev, 16)
    np.testing.assert_allclose(got, [2 / 8, 3 / 7, 3 / 5, 1.0])
    f = piece_features(ev, 4, 16)
    assert [f[k] for k in FORM_FEATURES] == pytest.approx(got.tolist())
    short = bar_lookback(tune(A, B, A), 16)
    assert short[0] == 0 and short[1] == 1.0 and np.isnan(short[2]) and np.isnan(short[3])


def test_bar_lookback_ignores_bars_without_a_note_on():
    held = [HOLD] * 16  # the previous bar's last note held on
    got = bar_lookback(tune(A, REST, REST, held, held), 16, lags=(1,))
    assert np.isnan(got[0])  # no later bar has a note-on: nothing to judge
    assert bar_lookback(tune(A, REST, A), 16, lags=(1, 2)).tolist() == [0.0, 1.0]


def test_repetition_uses_the_pieces_own_bars():
    bars = [bar_of([p, p + 2, p + 4], 4) for p in (60, 62, 65, 67)]
    phrase = [e for b in bars for e in b]  # 4 bars of 3/4 (12 steps each) = 48 steps
    ev = np.array(phrase + phrase, dtype=np.int64)  # played twice: 8 bars
    assert repetition(ev, 12) == pytest.approx(1 / 5)  # windows at bars 0..4; the last repeats the first
    assert repetition(ev, 16) == 0.0  # cut in 4/4 bars the repeat is invisible
    f34 = piece_features(ev, 4, [(0, 3, 4)])
    assert f34["repetition"] == pytest.approx(1 / 5) and f34["bar_repeat_4"] == 1.0
    assert piece_features(ev, 4, 16)["repetition"] == 0.0
    feats = set_features([ev, ev], 4, [12, [(0, 3, 4)]])
    assert feats["repetition"].tolist() == pytest.approx([0.2, 0.2])


def test_phrase_copies_with_bar_lines():
    bars34 = [bar_of([p, p + 2, p + 4], 4) for p in (60, 62, 65, 67, 69)]
    training = np.array([e for b in bars34 for e in b], dtype=np.int64)  # 5 bars of 3/4
    index = TrainingIndex([training], ["t"])
    melody = np.array([e for b in bars34[1:5] + [A[:12]] for e in b], dtype=np.int64)  # bars 2-5, then another
    found, total = index.phrase_matches(melody, 12)
    assert (found, total) == (1, 2)
    lines = bar_lines(len(melody), 4, [(0, 3, 4)])
    assert index.phrase_matches(melody, lines) == (found, total)
    # 4/4 then 3/4: the phrase starting at the change is found, spanning bars of 12 steps
    mixed = np.concatenate([np.array(A, np.int64), training[12:]])
    lines = bar_lines(len(mixed), 4, [(0, 4, 4), (16, 3, 4)])
    assert lines.tolist() == [0, 16, 28, 40, 52, 64]
    assert index.phrase_matches(mixed, lines) == (1, 2)

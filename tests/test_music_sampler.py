"""Melody sampling on the numpy stepper: seeds, greedy, constraints, primer, beam search, keys (no TensorFlow)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from app.core.beam import beam_search
from app.core.modelconfig import ModelConfig
from app.core.sampling import SamplingOptions, log_softmax
from app.core.stepper import NumpyStepper
from app.errors import OptionError
from app.music.sampler import MAX_STEPS, MelodyOptions, constraint_mask, generate_ids
from app.music.scales import parse_key, pitch_classes, pitch_mask

MIN_PITCH = 55
V = 2 + 25  # hold, rest, pitches 55..79
NOTE_PITCH = np.array([-1, -1] + list(range(MIN_PITCH, MIN_PITCH + 25)))


def stepper(v=V, units=10, seed=0, cell="lstm"):
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(cell=cell, units=units, layers=1, input="onehot")
    g = 4 if cell == "lstm" else 3
    w = {"rnn_0/kernel": rng.normal(0, 1, (v, g * units)), "rnn_0/recurrent_kernel": rng.normal(0, 1, (units, g * units)),
         "rnn_0/bias": rng.normal(0, 0.5, (g * units,) if cell == "lstm" else (2, g * units)),
         "head/kernel": rng.normal(0, 1.5, (units, v)), "head/bias": np.zeros(v)}
    return NumpyStepper(w, cfg, v)


def sequence_logprob(st, seq, primer=(), allowed=None):
    """log p(seq | x0, primer) under the renormalised distribution over `allowed` tokens (what beam scores)."""
    ids = np.array([[-1, *primer, *seq[:-1]]])
    logits = st.run(ids)[0].astype(np.float64)
    if allowed is not None:
        logits = np.where(allowed[None], logits, -np.inf)
    lp = log_softmax(logits)
    off = len(primer)
    return float(sum(lp[off + t, s] for t, s in enumerate(seq)))


def test_same_seed_same_melodies_and_different_seeds_differ():
    st = stepper()
    a = generate_ids(st, NOTE_PITCH, MelodyOptions(n=3, steps=40, seed=7))
    b = generate_ids(st, NOTE_PITCH, MelodyOptions(n=3, steps=40, seed=7))
    c = generate_ids(st, NOTE_PITCH, MelodyOptions(n=3, steps=40, seed=8))
    assert a.shape == (3, 40) and a.dtype == np.int32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # the batch rows are independent draws


def test_greedy_is_the_argmax_loop():
    st = stepper(seed=2)
    out = generate_ids(st, NOTE_PITCH, MelodyOptions(n=2, steps=25, sampling=SamplingOptions(greedy=True)))
    state, x, ref = st.zero_state(1), np.array([-1]), []
    for _ in range(25):
        logits, state = st.step(x, state)
        x = logits.argmax(1)
        ref.append(int(x[0]))
    np.testing.assert_array_equal(out[0], ref)
    np.testing.assert_array_equal(out[1], ref)


def test_key_and_range_constraints_mask_note_ons_only():
    st = stepper(seed=4)
    opts = MelodyOptions(n=8, steps=200, seed=1, key="D dorian", min_pitch=60, max_pitch=72,
                         sampling=SamplingOptions(temperature=2.0))
    out = generate_ids(st, NOTE_PITCH, opts)
    pitches = NOTE_PITCH[out]
    notes = pitches[pitches >= 0]
    assert notes.size > 50
    assert set(np.unique(notes % 12)) <= {2, 4, 5, 7, 9, 11, 0}
    assert notes.min() >= 60 and notes.max() <= 72
    assert (out < 2).any()  # hold/rest stay allowed
    free = generate_ids(st, NOTE_PITCH, MelodyOptions(n=8, steps=200, seed=1, sampling=SamplingOptions(2.0)))
    free_notes = NOTE_PITCH[free][NOTE_PITCH[free] >= 0]
    assert not set(np.unique(free_notes % 12)) <= {2, 4, 5, 7, 9, 11, 0}  # the constraint did something


def test_contradictory_constraints_are_an_error():
    with pytest.raises(OptionError, match="no note"):
        constraint_mask(NOTE_PITCH, key="C", min_pitch=61, max_pitch=61)  # C# only, not in C major
    with pytest.raises(OptionError, match="min pitch"):
        MelodyOptions(min_pitch=70, max_pitch=60)


def test_primer_is_kept_and_continued_from_the_primed_state():
    st = stepper(seed=5)
    primer = np.array([2 + 5, 0, 0, 0, 2 + 7, 0, 1, 0], np.int32)
    out = generate_ids(st, NOTE_PITCH, MelodyOptions(n=2, steps=16, sampling=SamplingOptions(greedy=True)), primer)
    assert out.shape == (2, len(primer) + 16)
    np.testing.assert_array_equal(out[:, :len(primer)], np.broadcast_to(primer, (2, len(primer))))
    # the continuation is the argmax given x0 + primer + what came before (teacher-forced check)
    logits = st.run(np.concatenate([[-1], out[0, :-1]])[None])[0]
    np.testing.assert_array_equal(logits[len(primer):].argmax(-1), out[0, len(primer):])
    no_primer = generate_ids(st, NOTE_PITCH, MelodyOptions(n=1, steps=16, sampling=SamplingOptions(greedy=True)))
    assert not np.array_equal(no_primer[0], out[0, len(primer):])


def test_beam_size_one_is_greedy():
    st = stepper(seed=6)
    greedy = generate_ids(st, NOTE_PITCH, MelodyOptions(steps=20, sampling=SamplingOptions(greedy=True)))
    beam1, _ = beam_search(st.step, st.select, st.zero_state(1), -1, 20, 1)
    np.testing.assert_array_equal(beam1[0], greedy[0])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_wide_beam_is_exact_search(cell):
    v, length = 3, 5
    st = stepper(v=v, units=6, seed=11, cell=cell)
    allowed = np.array([True, False, True])
    best = sorted(((sequence_logprob(st, s, allowed=allowed), s) for s in itertools.product(range(v), repeat=length)
                   if all(allowed[list(s)])), key=lambda r: -r[0])
    seqs, scores = beam_search(st.step, st.select, st.zero_state(1), -1, length, beam_size=2 ** (length - 1),
                               allowed=allowed, n_best=3)
    for k in range(3):
        assert tuple(seqs[k]) == best[k][1]
        assert scores[k] == pytest.approx(best[k][0], abs=1e-9)
    narrow, narrow_score = beam_search(st.step, st.select, st.zero_state(1), -1, length, beam_size=1,
                                       allowed=allowed)
    assert narrow_score[0] <= scores[0] + 1e-12


def test_beam_through_generate_with_primer_and_n():
    st = stepper(seed=8)
    primer = np.array([9, 0, 0, 11], np.int32)
    out = generate_ids(st, NOTE_PITCH, MelodyOptions(n=3, steps=12, beam=4, key="C"), primer)
    assert out.shape == (3, 16)
    np.testing.assert_array_equal(out[:, :4], np.broadcast_to(primer, (3, 4)))
    assert len({tuple(r) for r in out}) == 3  # three distinct hypotheses, best first
    scores = [sequence_logprob(st, list(r[4:]), primer, constraint_mask(NOTE_PITCH, key="C")) for r in out]
    assert scores[0] >= scores[1] >= scores[2]
    gen_notes = NOTE_PITCH[out[:, 4:]]
    assert set(np.unique(gen_notes[gen_notes >= 0] % 12)) <= {0, 2, 4, 5, 7, 9, 11}
    with pytest.raises(OptionError):
        beam_search(st.step, st.select, st.zero_state(1), -1, 5, beam_size=2, n_best=3)


@pytest.mark.parametrize("name,tonic,mode", [("C", 0, "major"), ("Am", 9, "minor"), ("a minor", 9, "minor"),
                                             ("F#", 6, "major"), ("Bb mixolydian", 10, "mixolydian"),
                                             ("D_dorian", 2, "dorian"), ("Eb-minor-pentatonic", 3, "minor-pentatonic")])
def test_key_names(name, tonic, mode):
    assert parse_key(name) == (tonic, mode)


def test_scales_and_unknown_keys():
    assert pitch_classes("Am") == pitch_classes("C") == frozenset({0, 2, 4, 5, 7, 9, 11})
    assert pitch_classes("G") == frozenset({7, 9, 11, 0, 2, 4, 6})
    assert pitch_classes("chromatic") == frozenset(range(12))
    np.testing.assert_array_equal(pitch_mask("C", np.array([-1, 60, 61, 71])), [True, True, False, True])
    for bad in ("H", "C lydianish", "", "Cb#", "12"):
        with pytest.raises(OptionError, match="unknown key"):
            parse_key(bad)
    with pytest.raises(OptionError, match="unknown key"):
        MelodyOptions(key="X major")


@pytest.mark.parametrize("steps", [0, -4, MAX_STEPS + 1, 2.5])
def test_bad_lengths(steps):
    with pytest.raises(OptionError, match="steps"):
        MelodyOptions(steps=steps)


def test_bad_temperature_and_counts():
    for t in (0, -1.0):
        with pytest.raises(OptionError, match="temperature"):
            SamplingOptions(temperature=t)
    with pytest.raises(OptionError):
        MelodyOptions(n=0)
    with pytest.raises(OptionError):
        MelodyOptions(beam=0)

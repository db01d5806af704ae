"""Batch-1 runners (app.core.runner) are the same models as their steppers, and the one-melody loop built on them
draws what the batched loop draws (numpy only, no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.modelconfig import ModelConfig
from app.core.runner import StepRunner, runner_for
from app.core.sampling import SamplingOptions, row_chooser, sample_next, softmax
from app.core.stepper import NumpyStepper
from app.errors import OptionError
from app.music.archs.base import get_arch
from app.music.sampler import MelodyOptions, constraint_mask, generate_ids, prime

V = 13
NOTE_PITCH = np.array([-1, -1] + list(range(60, 60 + V - 2)))


def arch_weights(name, settings, rng, u, vocab=V, scale=0.8, scales=None):
    """Random weights of the right shapes for each arch (as Keras would export them); `scales` overrides the
    standard deviation of some arrays. The attention output feeds back through the memory, so its out_kernel is
    kept small (a large one makes the outputs grow without bound over a long tune)."""
    from tests.music_fixtures import arch_shapes

    shapes = arch_shapes(name, settings, u, vocab)
    scales = {"attn/out_kernel": 0.12, **(scales or {})}
    return {k: rng.normal(0, scales.get(k, scale), s).astype(np.float32) for k, s in shapes.items()}


ARCHS = [("basic", {}), ("lookback", {"lookbacks": (1, 2)}), ("lookback", {"lookbacks": (1, 2, 4, 8)}),
         ("lookback", {"lookbacks": (1, 2, 3, 4, 6, 8)}),
         ("attention", {"attn_length": 7, "attn_dim": 5})]


def make(name, settings_dict, ts=(4, 4), u=8, seed=0, scale=0.8, scales=None):
    arch = get_arch(name)
    settings = arch.make_settings(settings_dict)
    w = arch_weights(name, settings, np.random.default_rng(seed), u, scale=scale, scales=scales)
    return arch.numpy().make_stepper(w, ModelConfig(units=u), settings, V, time_signature=ts)


def as_probs(kind, scores):
    s = np.asarray(scores, np.float64)
    return softmax(s) if kind == "logits" else s / s.sum()


def repeating_tune(rng, length, bar=8):
    """Tokens whose bars often repeat an earlier bar, so the repeat labels and flags fire."""
    s = list(rng.integers(0, V, bar))
    while len(s) < length:
        k = int(rng.integers(0, 4))
        s += list(rng.integers(0, V, bar)) if k == 0 else s[-bar * k:][:bar]
    return [int(x) for x in s[:length]]


@pytest.mark.parametrize("name,settings", ARCHS, ids=lambda v: str(v))
@pytest.mark.parametrize("ts", [(4, 4), (6, 8)])
def test_runner_equals_the_stepper_step_by_step(name, settings, ts):
    """Teacher-forced on a tune longer than the precomputed grid (1024 steps), so the grid grows mid-way."""
    st = make(name, settings, ts, scale=1.2 if name == "lookback" else 0.8)
    runner = st.runner()
    assert runner is not None and runner.kind in ("logits", "probs")
    tokens = [-1] + repeating_tune(np.random.default_rng(1), 1100, bar=12 if ts == (6, 8) else 16)
    state = st.zero_state(1)
    worst = 0.0
    for tok in tokens:
        logits, state = st.step(np.array([tok]), state)
        want = softmax(logits.astype(np.float64))[0]
        got = as_probs(runner.kind, runner.step(tok))
        assert np.isfinite(want).all() and np.isfinite(got).all()
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst < 1e-5


@pytest.mark.parametrize("cell,layers,inp", [("lstm", 2, "onehot"), ("lstm", 3, "embedding"), ("gru", 1, "onehot")])
def test_basic_stacks_and_other_cells(cell, layers, inp):
    rng = np.random.default_rng(4)
    u, g = 6, (4 if cell == "lstm" else 3)
    cfg = ModelConfig(cell=cell, units=u, layers=layers, input=inp, embed_dim=5)
    w = {"head/kernel": rng.normal(0, 1, (u, V)), "head/bias": rng.normal(0, 1, V)}
    if inp == "embedding":
        w["embed"] = rng.normal(0, 1, (V, 5))
    for i in range(layers):
        w[f"rnn_{i}/kernel"] = rng.normal(0, 1, ((5 if inp == "embedding" else V) if i == 0 else u, g * u))
        w[f"rnn_{i}/recurrent_kernel"] = rng.normal(0, 1, (u, g * u))
        w[f"rnn_{i}/bias"] = rng.normal(0, 1, (g * u,) if cell == "lstm" else (2, g * u))
    st = NumpyStepper(w, cfg, V)
    runner = runner_for(st)
    assert isinstance(runner, StepRunner) == (cell != "lstm")
    ids = np.array([[-1] + list(rng.integers(0, V, 40))])
    want = softmax(st.run(ids)[0].astype(np.float64))
    got = np.array([as_probs(runner.kind, runner.step(int(t))) for t in ids[0]])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_large_logits_take_the_shifted_path():
    """Weights whose logits could overflow exp without the max shift: the runners still match."""
    big = {"lookback": {"head/kernel": 40.0}, "attention": {"attn/v": 40.0}}
    for name, settings in ARCHS[1:]:
        st = make(name, settings, scales=big[name])
        runner = st.runner()
        assert not runner.exp_safe
        state = st.zero_state(1)
        for tok in [-1] + repeating_tune(np.random.default_rng(2), 60):
            logits, state = st.step(np.array([tok]), state)
            got = as_probs(runner.kind, runner.step(tok))
            assert np.isfinite(got).all()
            np.testing.assert_allclose(got, softmax(logits.astype(np.float64))[0], atol=1e-5)


def test_only_the_first_input_may_be_the_zero_input():
    runner = make("lookback", {"lookbacks": (1, 2)}).runner()
    runner.step(-1)
    runner.step(3)
    with pytest.raises(ValueError, match="first input"):
        runner.step(-1)


# --- the one-row chooser draws what sample_next draws ---------------------------------------------------------------
CHOICES = [SamplingOptions(greedy=True), SamplingOptions(temperature=1.0), SamplingOptions(temperature=0.6),
           SamplingOptions(temperature=2.5), SamplingOptions(top_k=3), SamplingOptions(top_p=0.7),
           SamplingOptions(min_p=0.2, temperature=0.8)]


@pytest.mark.parametrize("options", CHOICES, ids=lambda o: repr(o))
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("masked", [False, True])
def test_row_chooser_matches_sample_next(options, kind, masked):
    rng = np.random.default_rng(0)
    allowed = rng.random(V) < 0.6 if masked else None
    if allowed is not None:
        allowed[0] = True
    a, b = np.random.default_rng(9), np.random.default_rng(9)
    choose = row_chooser(kind, options, allowed, a)
    for _ in range(300):
        logits = rng.normal(0, 2, V).astype(np.float32)
        scores = logits if kind == "logits" else np.exp(logits - 3.0)  # probs: any positive scale
        got = choose(scores)
        want = int(sample_next(logits[None].astype(np.float64), b, options, allowed)[0])
        assert got == want
        assert allowed is None or allowed[got]


def test_row_chooser_errors_and_underflow():
    with pytest.raises(OptionError, match="no allowed token"):
        row_chooser("logits", SamplingOptions(), np.zeros(V, bool), np.random.default_rng(0))
    with pytest.raises(OptionError, match="kind"):
        row_chooser("log", SamplingOptions(), None, np.random.default_rng(0))
    allowed = np.zeros(V, bool)
    allowed[[2, 5]] = True
    probs = np.zeros(V, np.float32)
    probs[0] = 1.0  # every allowed token's probability underflowed to 0
    for options in (SamplingOptions(greedy=True), SamplingOptions(temperature=0.7)):
        assert row_chooser("probs", options, allowed, np.random.default_rng(0))(probs) in (2, 5)


# --- generate_ids at n = 1 (the runner loop) equals the batched loop ------------------------------------------------
def batched_reference(st, options, primer):
    """The batched loop of app.music.sampler at batch 1: prime, then sample_next per step."""
    allowed = constraint_mask(NOTE_PITCH, options.key, options.min_pitch, options.max_pitch)
    rng = np.random.default_rng(options.seed)
    state, logits = prime(st, primer, 1)
    out = []
    for t in range(options.steps):
        x = sample_next(logits, rng, options.sampling, None if allowed.all() else allowed)
        out.append(int(x[0]))
        logits, state = st.step(x, state)
    return np.array(list(primer) + out)


@pytest.mark.parametrize("name,settings", ARCHS, ids=lambda v: str(v))
def test_one_melody_equals_the_batched_loop(name, settings):
    st = make(name, settings, (3, 4))
    primer = np.array([4, 0, 0, 7, 1], np.int32)
    for opts in (MelodyOptions(n=1, steps=60, seed=3, key="C", sampling=SamplingOptions(temperature=0.9)),
                 MelodyOptions(n=1, steps=60, seed=4, min_pitch=62, max_pitch=66),
                 MelodyOptions(n=1, steps=40, sampling=SamplingOptions(greedy=True)),
                 MelodyOptions(n=1, steps=40, seed=5, sampling=SamplingOptions(top_p=0.8))):
        for p in (primer, np.zeros(0, np.int32)):
            got = generate_ids(st, NOTE_PITCH, opts, p if p.size else None)
            np.testing.assert_array_equal(got[0], batched_reference(st, opts, p))
    # greedy at n = 1 is row 0 of greedy at n = 2 (the batched path)
    g = MelodyOptions(n=2, steps=30, sampling=SamplingOptions(greedy=True))
    np.testing.assert_array_equal(generate_ids(st, NOTE_PITCH, MelodyOptions(n=1, steps=30, sampling=g.sampling))[0],
                                  generate_ids(st, NOTE_PITCH, g)[0])


def test_large_products_are_split_into_column_blocks(monkeypatch):
    """Products above MAX_PRODUCT elements run as column blocks (numpy's OpenBLAS threads bigger ones, which is
    slow at batch 1 on a busy machine); the runners give the same results with blocks."""
    from app.core import runner as R

    rng = np.random.default_rng(5)
    x, mat = rng.normal(size=7).astype(np.float32), rng.normal(size=(7, 50)).astype(np.float32)
    out = np.zeros(50, np.float32)
    R.product(x, mat, out)()
    np.testing.assert_allclose(out, x @ mat, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(R, "MAX_PRODUCT", 7 * 8)  # blocks of 8 columns
    out[:] = 0
    R.product(x, mat, out)()
    np.testing.assert_allclose(out, x @ mat, rtol=1e-6, atol=1e-6)
    monkeypatch.setattr(R, "MAX_PRODUCT", 40)  # every runner's products split
    for name, settings in ARCHS:
        st = make(name, settings)
        runner = st.runner()
        state = st.zero_state(1)
        for tok in [-1] + repeating_tune(np.random.default_rng(6), 80):
            logits, state = st.step(np.array([tok]), state)
            np.testing.assert_allclose(as_probs(runner.kind, runner.step(tok)),
                                       softmax(logits.astype(np.float64))[0], atol=1e-5)

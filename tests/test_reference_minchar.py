"""min-char-rnn (seed 003): BPTT gradient equals finite differences; Adagrad training learns a text."""

import math

import numpy as np
import pytest

from app.errors import DataError
from app.reference import minchar

PANGRAM = "the quick brown fox jumps over the lazy dog.\n"


def random_params(rng, vocab=7, hidden=6, scale=0.5):
    return {"Wxh": rng.normal(0, scale, (hidden, vocab)), "Whh": rng.normal(0, scale, (hidden, hidden)),
            "Why": rng.normal(0, scale, (vocab, hidden)), "bh": rng.normal(0, scale, hidden),
            "by": rng.normal(0, scale, vocab)}


def test_gradient_check_matches_finite_differences():
    rng = np.random.default_rng(0)
    params = random_params(rng)
    inputs = [None, 3, 1, 4, 1, 5, 2, 6]  # None = zero input (the course's x<1>)
    targets = [3, 1, 4, 1, 5, 2, 6, 0]
    h0 = rng.normal(0, 0.5, 6)
    assert minchar.grad_check(params, inputs, targets, h0, rng, checks=15) < 1e-6


def test_gradient_check_detects_a_wrong_gradient(monkeypatch):
    """The check can fail: drop the recurrent term of the backward pass and it reports a large error."""
    rng = np.random.default_rng(1)
    params = random_params(rng)
    real = minchar.loss_and_grads

    def broken(p, inputs, targets, h_prev, clip=minchar.CLIP):
        loss, grads, h = real(p, inputs, targets, h_prev, clip)
        grads["Whh"] = grads["Whh"] * 0.9
        return loss, grads, h

    monkeypatch.setattr(minchar, "loss_and_grads", broken)
    assert minchar.grad_check(params, [0, 1, 2, 3], [1, 2, 3, 4], np.zeros(6), rng) > 1e-3


def test_gradients_are_clipped_to_five():
    rng = np.random.default_rng(2)
    params = random_params(rng, scale=3.0)
    ids = list(rng.integers(0, 7, 30))
    _, raw, _ = minchar.loss_and_grads(params, ids[:-1], ids[1:], np.zeros(6), clip=None)
    _, clipped, _ = minchar.loss_and_grads(params, ids[:-1], ids[1:], np.zeros(6))
    assert max(np.abs(g).max() for g in raw.values()) > 5.0
    for k in minchar.PARAM_NAMES:
        np.testing.assert_array_equal(clipped[k], np.clip(raw[k], -5, 5))


def test_uniform_model_costs_log_vocab_per_char():
    model = minchar.MinCharRNN({k: np.zeros_like(v) for k, v in random_params(np.random.default_rng(3)).items()},
                               tuple("abcdefg"))
    assert minchar.nats_per_char(model, "abcabcgfed") == pytest.approx(math.log(7))


def test_training_learns_a_repeated_sentence_and_samples_it():
    text = PANGRAM * 40
    cut = len(PANGRAM) * 32
    model = minchar.train(text[:cut], 400, hidden_size=32, seq_length=25, seed=0)
    losses = [loss for _, loss in model.history]
    assert losses[0] == pytest.approx(math.log(len(model.chars)) * 25, rel=0.01)  # the document's starting value
    assert losses[-1] < losses[0] - 15
    assert minchar.nats_per_char(model, text[cut:]) < 0.2  # log(28) = 3.3 for a uniform guess
    ids = minchar.sample_ids(model.params, np.zeros(32), model.chars.index("t"), 200, np.random.default_rng(0))
    sample = "t" + "".join(model.chars[i] for i in ids)
    bigrams = [sample[i:i + 2] for i in range(len(sample) - 1)]
    assert sum(b in PANGRAM * 2 for b in bigrams) / len(bigrams) > 0.9  # uniform sampling: about 0.05


def test_text_errors_are_user_errors():
    with pytest.raises(DataError, match="needs more than"):
        minchar.train("abc", 10, seq_length=25)
    model = minchar.train(PANGRAM * 2, 1, hidden_size=4, seq_length=10)
    with pytest.raises(DataError, match="not seen in training"):
        minchar.nats_per_char(model, "THE")

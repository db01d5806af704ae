"""The course's dinosaur-name RNN (seed 002) on our de-duplicated training split: published behaviour checks."""

import math

import numpy as np
import pytest

from app.errors import DataError
from app.names.codec import read_names, split_names
from app.reference import dinos_rnn, minchar


@pytest.fixture(scope="module")
def split():
    return split_names(read_names("data/dinos.txt"), 0.1, 0)


@pytest.fixture(scope="module")
def trained(split):
    return dinos_rnn.train_course_rnn(split[0], 20000, seed=0)


def test_course_vocabulary_and_initial_loss(split):
    assert dinos_rnn.char_table(split[0]) == tuple("\nabcdefghijklmnopqrstuvwxyz")
    assert dinos_rnn.initial_loss(27) == pytest.approx(7 * math.log(27))  # = 23.071 before any step


def test_gradient_check_on_a_name():
    rng = np.random.default_rng(0)
    model = dinos_rnn.train_course_rnn(["abc", "bad", "cab"], 0)
    for k, v in model.params.items():
        v[...] = rng.normal(0, 0.3, v.shape)
    X, Y = model.xy("cabbad")
    assert X[0] is None and Y[-1] == 0
    assert minchar.grad_check(model.minchar_params(), X, Y, rng.normal(0, 0.3, model.n_a), rng) < 1e-5


@pytest.mark.slow  # trains the course RNN (module fixture)
def test_smoothed_loss_follows_the_course(trained):
    """Course (printed after each step's smoothing): 23.087 at iteration 0, up to ~27.9 at 2,000 (real names cost
    more than the 7-name guess), then falling back below the start as it learns."""
    h = dict(trained.history)
    assert h[0] == pytest.approx(23.087, abs=0.05)
    assert 26.0 < h[2000] < 30.0
    assert all(h[j + 2000] < h[j] for j in range(2000, 14000, 2000))
    assert h[19999] < 23.087


@pytest.mark.slow  # trains the course RNN (module fixture)
def test_heldout_nats_per_char_beats_uniform(trained, split):
    nats = dinos_rnn.heldout_nats_per_char(trained, split[1])
    assert nats < 2.0 < math.log(27)
    assert dinos_rnn.heldout_nats_per_char(trained, split[0]) < nats + 0.2


def test_uniform_model_costs_log_vocab(split):
    model = dinos_rnn.train_course_rnn(split[0], 0)
    for v in model.params.values():
        v[...] = 0.0
    assert dinos_rnn.heldout_nats_per_char(model, ["abc", "z"]) == pytest.approx(math.log(27))


@pytest.mark.slow  # trains the course RNN (module fixture)
def test_samples_are_names(trained):
    rng = np.random.default_rng(0)
    names = [dinos_rnn.sample_name(trained, rng) for _ in range(20)]
    assert all(0 < len(n) <= 50 and set(n) <= set("abcdefghijklmnopqrstuvwxyz") for n in names)
    assert sum(n.endswith("saurus") or n.endswith("us") for n in names) >= 3


@pytest.mark.slow  # trains the course RNN (module fixture)
def test_unknown_character_is_a_data_error(trained):
    with pytest.raises(DataError, match="not in the course RNN"):
        dinos_rnn.heldout_nats_per_char(trained, ["t-rex"])

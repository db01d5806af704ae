"""Binary addition RNN (seed 000): BPTT gradient is right; trained from scratch it adds unseen pairs exactly."""

import numpy as np
import pytest

from app.reference import addition


def test_bits_round_trip():
    n = np.arange(256)
    bits = addition.to_bits(n)
    assert bits.shape == (256, 8) and list(bits[6]) == [0, 1, 1, 0, 0, 0, 0, 0]  # 6 = 0b110, LSB first
    np.testing.assert_array_equal(addition.from_bits(bits), n)


def test_bptt_matches_finite_differences():
    rng = np.random.default_rng(0)
    params = addition.init_params(rng, hidden_dim=5)
    a, b = np.array([37, 90, 127]), np.array([64, 5, 127])
    _, descent = addition.error_and_descent(params, a, b)
    eps = 1e-6
    for name, w in params.items():
        for ix in [tuple(int(rng.integers(0, n)) for n in w.shape) for _ in range(6)]:
            old = w[ix]
            w[ix] = old + eps
            plus, _ = addition.error_and_descent(params, a, b)
            w[ix] = old - eps
            minus, _ = addition.error_and_descent(params, a, b)
            w[ix] = old
            assert -descent[name][ix] == pytest.approx((plus - minus) / (2 * eps), rel=1e-6, abs=1e-9)


@pytest.mark.slow  # trains
def test_learns_to_add_pairs_it_never_saw():
    held = addition.heldout_pairs(1000, seed=123)
    untrained = addition.train(0, seed=0)
    assert addition.accuracy(untrained.params, held) < 0.05
    model = addition.train(10000, seed=0, exclude=set(held))
    errors = [e for _, e in model.history]
    assert errors[-1] < 0.1 * errors[0]
    assert addition.accuracy(model.params, held) == 1.0
    assert list(addition.add(model.params, [100, 0], [27, 0])) == [127, 0]

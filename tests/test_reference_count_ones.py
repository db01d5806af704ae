"""Linear RNN counting ones (seed 004): BPTT gradient vs finite differences; Rprop from (-1.5, 2) reaches (1, 1)."""

import numpy as np
import pytest

from app.reference import count_ones as co


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_finite_differences(seed):
    X, t = co.make_dataset(np.random.default_rng(seed))
    for w in [(1.2, 1.2), (-1.5, 2.0), (0.3, -0.7)]:
        _, grad = co.loss_and_gradient(X, t, *w)
        np.testing.assert_allclose(grad, co.numerical_gradient(X, t, *w), rtol=1e-6)


def test_exploding_and_vanishing_gradient_over_time():
    X, t = co.make_dataset(np.random.default_rng(0))
    for w_rec, grows in [(2.0, True), (0.5, False)]:
        S = co.forward_states(X, 1.0, w_rec)
        _, over_time = co.backward_gradient(X, S, co.output_gradient(S[:, -1], t), w_rec)
        ratio = np.abs(over_time[:, 0]).sum() / np.abs(over_time[:, -1]).sum()
        assert ratio == pytest.approx(abs(w_rec) ** X.shape[1])
        assert (ratio > 1) == grows


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_rprop_reaches_one_one(seed):
    X, t = co.make_dataset(np.random.default_rng(seed))
    path = co.rprop(X, t, w0=(-1.5, 2.0), iterations=500, eta_p=1.2, eta_n=0.5)
    assert path.shape == (501, 2) and tuple(path[0]) == (-1.5, 2.0)
    np.testing.assert_allclose(path[-1], [1.0, 1.0], atol=0.01)
    assert co.cost(co.forward_states(X, *path[-1])[:, -1], t) < 1e-3


def test_plot_is_written(tmp_path):
    X, t = co.make_dataset(np.random.default_rng(0))
    path = co.rprop(X, t, iterations=50)
    out = co.plot_rprop_path(X, t, path, tmp_path / "rprop.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_cost_surface_agrees_with_the_recurrence():
    X, t = co.make_dataset(np.random.default_rng(4))
    ws1, ws2, costs = co.cost_surface(X, t, -3.0, 3.0, n=7)
    for i, j in [(0, 0), (3, 5), (6, 2)]:
        assert costs[i, j] == pytest.approx(co.cost(co.forward_states(X, ws1[i, j], ws2[i, j])[:, -1], t))
    assert costs.min() == pytest.approx(0.0, abs=1e-12)  # the grid passes through (1, 1)

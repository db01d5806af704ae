"""Binary addition with a recurrent hidden layer (seed 000, after iamtrask): 8-bit a + b learnt bit by bit.

The network reads the two numbers' bits from the least significant end, one position per time step, and must
output the sum's bit at that position; the carry has to live in the hidden layer's own recurrence. Notation of the
document: SYNAPSE_0 (2 × 16) input → hidden, SYNAPSE_h (16 × 16) hidden → next hidden, SYNAPSE_1 (16 × 1)
hidden → output, σ the logistic function, no biases. Row vectors, time step t = 0 … 7 (bit 2^t):

    layer_1⟨t⟩ = σ(X⟨t⟩ · SYNAPSE_0 + layer_1⟨t-1⟩ · SYNAPSE_h),   layer_1⟨-1⟩ = 0,  X⟨t⟩ = [a_t, b_t]
    layer_2⟨t⟩ = σ(layer_1⟨t⟩ · SYNAPSE_1)                            (predicted bit c_t)
    E          = ½ Σ_t (c_t − layer_2⟨t⟩)²

Backpropagation through time (the document's deltas are −∂E/∂(pre-activation)), from t = 7 down to 0:

    layer_2_delta⟨t⟩ = (c_t − layer_2⟨t⟩) ∗ layer_2⟨t⟩ (1 − layer_2⟨t⟩)
    layer_1_delta⟨t⟩ = (layer_1_delta⟨t+1⟩ · SYNAPSE_hᵀ + layer_2_delta⟨t⟩ · SYNAPSE_1ᵀ) ∗ layer_1⟨t⟩ (1 − layer_1⟨t⟩)
    −∂E/∂SYNAPSE_1 = Σ_t layer_1⟨t⟩ᵀ · layer_2_delta⟨t⟩
    −∂E/∂SYNAPSE_h = Σ_t layer_1⟨t-1⟩ᵀ · layer_1_delta⟨t⟩
    −∂E/∂SYNAPSE_0 = Σ_t X⟨t⟩ᵀ · layer_1_delta⟨t⟩

with layer_1_delta⟨8⟩ = 0, and each iteration adds α · (−∂E/∂W) to every W (α = 0.1): SGD on one random pair
a, b ∈ [0, 128) per iteration (so a + b < 256 fits in 8 bits). Weights start uniform in [−1, 1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from app.errors import OptionError

BITS = 8
LARGEST = 2 ** BITS  # sums are < 256; operands are drawn below LARGEST // 2


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def to_bits(n: np.ndarray) -> np.ndarray:
    """ints (m,) in [0, 256) -> bits (m, 8), least significant first (the order the network reads them)."""
    n = np.asarray(n, dtype=np.int64)
    return (n[:, None] >> np.arange(BITS)) & 1


def from_bits(bits: np.ndarray) -> np.ndarray:
    """bits (m, 8), least significant first -> ints (m,)."""
    return (np.asarray(bits, dtype=np.int64) << np.arange(BITS)).sum(axis=1)


def init_params(rng: np.random.Generator, hidden_dim: int = 16) -> dict[str, np.ndarray]:
    return {"SYNAPSE_0": 2 * rng.random((2, hidden_dim)) - 1, "SYNAPSE_1": 2 * rng.random((hidden_dim, 1)) - 1,
            "SYNAPSE_h": 2 * rng.random((hidden_dim, hidden_dim)) - 1}


def forward(params: dict, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """a, b ints (m,) -> X (T, m, 2), layer_1 (T + 1, m, H) with layer_1[-1] = 0 = layer_1⟨-1⟩, layer_2 (T, m)."""
    X = np.stack([to_bits(a), to_bits(b)], axis=-1).transpose(1, 0, 2).astype(np.float64)
    m, H = X.shape[1], params["SYNAPSE_h"].shape[0]
    layer_1 = np.zeros((BITS + 1, m, H))
    layer_2 = np.zeros((BITS, m))
    for t in range(BITS):
        layer_1[t] = sigmoid(X[t] @ params["SYNAPSE_0"] + layer_1[t - 1] @ params["SYNAPSE_h"])
        layer_2[t] = sigmoid(layer_1[t] @ params["SYNAPSE_1"])[:, 0]
    return X, layer_1, layer_2


def error_and_descent(params: dict, a: np.ndarray, b: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """E = ½ Σ (c − layer_2)² summed over pairs and bits, and the BPTT updates −∂E/∂W of the module docstring."""
    X, layer_1, layer_2 = forward(params, a, b)
    c = to_bits(np.asarray(a) + np.asarray(b)).T.astype(np.float64)  # (T, m)
    err = c - layer_2
    layer_2_delta = (err * layer_2 * (1 - layer_2))[:, :, None]  # (T, m, 1)
    upd = {k: np.zeros_like(v) for k, v in params.items()}
    future = np.zeros_like(layer_1[0])
    for t in reversed(range(BITS)):
        layer_1_delta = (future @ params["SYNAPSE_h"].T + layer_2_delta[t] @ params["SYNAPSE_1"].T) \
            * layer_1[t] * (1 - layer_1[t])
        upd["SYNAPSE_1"] += layer_1[t].T @ layer_2_delta[t]
        upd["SYNAPSE_h"] += layer_1[t - 1].T @ layer_1_delta
        upd["SYNAPSE_0"] += X[t].T @ layer_1_delta
        future = layer_1_delta
    return float(0.5 * (err ** 2).sum()), upd


def add(params: dict, a, b) -> np.ndarray:
    """The network's sums of int arrays a, b (each bit rounded at 0.5)."""
    _, _, layer_2 = forward(params, np.atleast_1d(a), np.atleast_1d(b))
    return from_bits((layer_2.T > 0.5).astype(np.int64))


@dataclass
class AdditionRNN:
    params: dict
    history: list[tuple[int, float]] = field(default_factory=list)  # (iteration, mean E per pair since last entry)


def train(iterations: int = 10000, *, seed: int = 0, alpha: float = 0.1, hidden_dim: int = 16,
          exclude: set[tuple[int, int]] | frozenset = frozenset(),
          log: Callable[[int, float, int, int, int], None] | None = None, log_every: int = 1000) -> AdditionRNN:
    """SGD, one random pair per iteration, never a pair in `exclude` (held out for testing).

    log(j, mean E per pair since the last log, a, b, the network's a + b after the update) every log_every.
    """
    if iterations < 0 or not alpha > 0 or hidden_dim < 1 or log_every < 1:
        raise OptionError("iterations >= 0, alpha > 0, hidden_dim >= 1 and log_every >= 1 are required")
    rng = np.random.default_rng(seed)
    model = AdditionRNN(init_params(rng, hidden_dim))
    total, count = 0.0, 0
    for j in range(iterations):
        a, b = (int(v) for v in rng.integers(0, LARGEST // 2, 2))
        while (a, b) in exclude:
            a, b = (int(v) for v in rng.integers(0, LARGEST // 2, 2))
        e, upd = error_and_descent(model.params, np.array([a]), np.array([b]))
        total += e
        count += 1
        for k, u in upd.items():
            model.params[k] += alpha * u
        if j % log_every == 0 or j == iterations - 1:
            model.history.append((j, total / count))
            if log is not None:
                log(j, total / count, a, b, int(add(model.params, a, b)[0]))
            total, count = 0.0, 0
    return model


def heldout_pairs(n: int, seed: int) -> list[tuple[int, int]]:
    """n distinct (a, b) pairs with a, b in [0, 128), for testing on sums the training never saw."""
    rng = np.random.default_rng(seed)
    flat = rng.choice((LARGEST // 2) ** 2, size=n, replace=False)
    return [(int(f) // (LARGEST // 2), int(f) % (LARGEST // 2)) for f in flat]


def accuracy(params: dict, pairs: list[tuple[int, int]]) -> float:
    """Fraction of pairs whose 8-bit sum the network gets exactly right."""
    a, b = np.array(pairs).T
    return float((add(params, a, b) == a + b).mean())

"""LSTM forward pass in numpy, in the course's notation (seed 002): the oracle for our Keras LSTMs.

Shapes follow the course: x (n_x, m, T_x), a and c (n_a, m, T_x), y (n_y, m, T_x); one time step works on
columns x⟨t⟩ (n_x, m). With concat = [a⟨t-1⟩; x⟨t⟩] of shape (n_a + n_x, m):

    Γ_f = σ(W_f · concat + b_f)                  forget gate
    Γ_u = σ(W_i · concat + b_i)                  update (input) gate
    c̃⟨t⟩ = tanh(W_c · concat + b_c)              candidate cell
    c⟨t⟩ = Γ_f ∗ c⟨t-1⟩ + Γ_u ∗ c̃⟨t⟩
    Γ_o = σ(W_o · concat + b_o)                  output gate
    a⟨t⟩ = Γ_o ∗ tanh(c⟨t⟩)
    ŷ⟨t⟩ = softmax(W_y · a⟨t⟩ + b_y)             softmax over the n_y rows of each column

with W_f, W_i, W_c, W_o of shape (n_a, n_a + n_x), b_* (n_a, 1), W_y (n_y, n_a), b_y (n_y, 1). `lstm_forward`
starts from a⟨0⟩ = a0 and, as in the course, c⟨0⟩ = 0 unless `c0` is given.

Gradient: none. This module is a forward-pass oracle only; Keras computes the training gradients, and the tests
compare Keras' forward values (every a⟨t⟩, c⟨t⟩, ŷ⟨t⟩) with these equations.

`params_from_keras` converts Keras weights: an LSTM layer keeps kernel (n_x, 4 n_a), recurrent_kernel
(n_a, 4 n_a) and bias (4 n_a,) with the gates' columns in the order (i, f, c, o), and computes
x·kernel + a·recurrent_kernel + bias on row vectors. So W_g = [recurrent_kernel[:, g]; kernel[:, g]]ᵀ for the
course's concat order [a; x], and Dense(kernel (n_a, n_y), bias) gives W_y = kernelᵀ, b_y = bias.
"""

from __future__ import annotations

import numpy as np

GATES = ("i", "f", "c", "o")  # Keras' column order in kernel / recurrent_kernel / bias


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # = 1 / (1 + e^-z), without overflow for large |z|


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over axis 0 (the course keeps classes in rows, examples in columns)."""
    e = np.exp(z - z.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def lstm_cell_forward(xt: np.ndarray, a_prev: np.ndarray, c_prev: np.ndarray, parameters: dict):
    """One step: xt (n_x, m), a_prev and c_prev (n_a, m) -> a_next, c_next (n_a, m), yt_pred (n_y, m), cache."""
    concat = np.concatenate([a_prev, xt], axis=0)
    ft = sigmoid(parameters["Wf"] @ concat + parameters["bf"])
    it = sigmoid(parameters["Wi"] @ concat + parameters["bi"])
    cct = np.tanh(parameters["Wc"] @ concat + parameters["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(parameters["Wo"] @ concat + parameters["bo"])
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(parameters["Wy"] @ a_next + parameters["by"])
    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt)
    return a_next, c_next, yt_pred, cache


def lstm_forward(x: np.ndarray, a0: np.ndarray, parameters: dict, c0: np.ndarray | None = None):
    """All steps: x (n_x, m, T_x), a0 (n_a, m) -> a, y, c of shapes (n_a|n_y|n_a, m, T_x), and the caches."""
    n_x, m, T_x = x.shape
    n_y, n_a = parameters["Wy"].shape
    a = np.zeros((n_a, m, T_x))
    c = np.zeros((n_a, m, T_x))
    y = np.zeros((n_y, m, T_x))
    a_next = np.asarray(a0, dtype=np.float64)
    c_next = np.zeros_like(a_next) if c0 is None else np.asarray(c0, dtype=np.float64)
    caches = []
    for t in range(T_x):
        a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t], c[:, :, t], y[:, :, t] = a_next, c_next, yt
        caches.append(cache)
    return a, y, c, (caches, x)


def params_from_keras(kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray,
                      dense_kernel: np.ndarray, dense_bias: np.ndarray) -> dict:
    """Keras LSTM (kernel, recurrent_kernel, bias) + Dense (kernel, bias) -> the course's parameter dict (float64)."""
    kernel, recurrent_kernel = np.asarray(kernel, np.float64), np.asarray(recurrent_kernel, np.float64)
    bias = np.asarray(bias, np.float64)
    n_a = recurrent_kernel.shape[0]
    if recurrent_kernel.shape != (n_a, 4 * n_a) or kernel.shape[1] != 4 * n_a or bias.shape != (4 * n_a,):
        raise ValueError(f"not LSTM weights: kernel {kernel.shape}, recurrent_kernel {recurrent_kernel.shape}, "
                         f"bias {bias.shape}")
    params = {}
    for k, gate in enumerate(GATES):
        cols = slice(k * n_a, (k + 1) * n_a)
        params[f"W{gate}"] = np.concatenate([recurrent_kernel[:, cols], kernel[:, cols]], axis=0).T
        params[f"b{gate}"] = bias[cols].reshape(n_a, 1)
    params["Wy"] = np.asarray(dense_kernel, np.float64).T
    params["by"] = np.asarray(dense_bias, np.float64).reshape(-1, 1)
    return params

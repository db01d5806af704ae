"""A numpy step loop over exported Keras weights: the fast, TensorFlow-free inference path.

Equations (Keras conventions, x_t the input row, h/c the state, units u):
  LSTM  z = x_t W + h U + b;  i, f, g, o = σ(z_i), σ(z_f), tanh(z_g), σ(z_o);  c' = f c + i g;  h' = o tanh(c')
  GRU   (reset_after)  xz, xr, xh = x_t W + b_in;  hz, hr, hh = h U + b_rec
        z = σ(xz + hz);  r = σ(xr + hr);  ĥ = tanh(xh + r hh);  h' = z h + (1 - z) ĥ
The first layer's input is a token id, so x_t W is a row lookup in a table precomputed once (one-hot: W itself;
embedding: E W); id -1 selects an all-zero input (the course's x0 = zeros).
Shapes: ids (batch,), logits (batch, vocab); state is a list with one (h, c) pair (LSTM) or (h,) (GRU) per layer.
"""

from __future__ import annotations

import numpy as np

from app.core.modelconfig import ModelConfig
from app.errors import ModelFolderError


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings for large |x|, same value as 1 / (1 + exp(-x))
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


class NumpyStepper:
    """Runs the model of `cfg` one step at a time for a whole batch."""

    def __init__(self, weights: dict[str, np.ndarray], cfg: ModelConfig, vocab_size: int):
        self.cfg = cfg
        self.vocab_size = vocab_size
        try:
            w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
            k0 = w["rnn_0/kernel"]
            first = k0 if cfg.input == "onehot" else w["embed"] @ k0
            if first.shape[0] != vocab_size:
                raise ModelFolderError(f"weights expect a vocabulary of {first.shape[0]}, vocab.json has {vocab_size}")
            # row `vocab_size` is all zeros: the input for id -1
            self.table0 = np.vstack([first, np.zeros((1, first.shape[1]), np.float32)])
            self.kernels = [None] + [w[f"rnn_{i}/kernel"] for i in range(1, cfg.layers)]
            self.recurrent = [w[f"rnn_{i}/recurrent_kernel"] for i in range(cfg.layers)]
            self.biases = [w[f"rnn_{i}/bias"] for i in range(cfg.layers)]
            self.head_k, self.head_b = w["head/kernel"], w["head/bias"]
        except KeyError as exc:
            raise ModelFolderError(f"weights are missing array {exc}; the model folder is incomplete") from None
        u = cfg.units
        for i, r in enumerate(self.recurrent):
            expected = (u, (4 if cfg.cell == "lstm" else 3) * u)
            if r.shape != expected:
                raise ModelFolderError(f"layer {i}: recurrent kernel {r.shape} does not match config {expected}")

    def zero_state(self, batch: int) -> list[tuple[np.ndarray, ...]]:
        z = lambda: np.zeros((batch, self.cfg.units), np.float32)  # noqa: E731
        return [(z(), z()) if self.cfg.cell == "lstm" else (z(),) for _ in range(self.cfg.layers)]

    def step(self, ids: np.ndarray, state: list[tuple[np.ndarray, ...]]):
        """ids (batch,) int -> (logits (batch, vocab) float32, new state)."""
        ids = np.asarray(ids)
        rows = np.where(ids < 0, self.vocab_size, ids)
        x_proj = self.table0[rows]
        new_state = []
        h = None
        for i in range(self.cfg.layers):
            if i > 0:
                x_proj = h @ self.kernels[i]
            if self.cfg.cell == "lstm":
                h_prev, c_prev = state[i]
                z = x_proj + h_prev @ self.recurrent[i] + self.biases[i]
                u = self.cfg.units
                i_g = _sigmoid(z[:, :u])
                f_g = _sigmoid(z[:, u:2 * u])
                g = np.tanh(z[:, 2 * u:3 * u])
                o_g = _sigmoid(z[:, 3 * u:])
                c = f_g * c_prev + i_g * g
                h = o_g * np.tanh(c)
                new_state.append((h, c))
            else:
                (h_prev,) = state[i]
                u = self.cfg.units
                b_in, b_rec = self.biases[i][0], self.biases[i][1]
                xz = x_proj + b_in
                hz = h_prev @ self.recurrent[i] + b_rec
                z_g = _sigmoid(xz[:, :u] + hz[:, :u])
                r_g = _sigmoid(xz[:, u:2 * u] + hz[:, u:2 * u])
                hh = np.tanh(xz[:, 2 * u:] + r_g * hz[:, 2 * u:])
                h = z_g * h_prev + (1.0 - z_g) * hh
                new_state.append((h,))
        logits = h @ self.head_k + self.head_b
        return logits, new_state

    def select(self, state, keep: np.ndarray):
        """Keep only the batch rows `keep` (bool mask or indices) of a state, to drop finished sequences."""
        return [tuple(s[keep] for s in layer) for layer in state]

    def run(self, ids: np.ndarray, state=None) -> np.ndarray:
        """Teacher-forced: ids (batch, time) -> logits (batch, time, vocab)."""
        ids = np.asarray(ids)
        state = self.zero_state(ids.shape[0]) if state is None else state
        out = np.empty(ids.shape + (self.vocab_size,), np.float32)
        for t in range(ids.shape[1]):
            out[:, t], state = self.step(ids[:, t], state)
        return out

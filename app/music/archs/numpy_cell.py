"""One LSTM step in numpy over Keras weights, for the archs' steppers (no TensorFlow).

Keras LSTM: z = x W + h U + b, gates (i, f, g, o): c' = σ(f) c + σ(i) tanh(g), h' = σ(o) tanh(c'). As in
app.core.stepper, the columns are reordered to (i, f, o, g) and the sigmoid columns halved, so one tanh over the
block gives all gates (σ(x) = ½ tanh(x/2) + ½). Shapes: x-projection (batch, 4u), h and c (batch, u).
"""

from __future__ import annotations

import numpy as np

from app.errors import ModelFolderError


class NumpyLSTM:
    """kernel (F, 4u), recurrent (u, 4u), bias (4u,) in Keras order; `project` rows or dense inputs, `step`."""

    def __init__(self, kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray):
        u = recurrent.shape[0]
        if recurrent.shape != (u, 4 * u) or kernel.shape[1] != 4 * u or bias.shape != (4 * u,):
            raise ModelFolderError(f"LSTM weights have inconsistent shapes: kernel {kernel.shape}, recurrent "
                                   f"{recurrent.shape}, bias {bias.shape}; expected (F, {4 * u}), ({u}, {4 * u}), "
                                   f"({4 * u},)")
        order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
        scale = np.r_[np.full(3 * u, 0.5), np.ones(u)].astype(np.float32)

        def prep(m):
            return np.ascontiguousarray(np.asarray(m, np.float32)[..., order] * scale)

        self.units = u
        self.kernel, self.recurrent, self.bias = prep(kernel), prep(recurrent), prep(bias)

    def step(self, zx: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """zx: the input projection x W + b (batch, 4u), in the prepared column order; returns (h', c')."""
        u = self.units
        z = zx + h @ self.recurrent
        np.tanh(z, out=z)
        sig = z[:, :3 * u]
        sig *= 0.5
        sig += 0.5
        c2 = sig[:, u:2 * u] * c
        c2 += sig[:, :u] * z[:, 3 * u:]
        h2 = np.tanh(c2)
        h2 *= sig[:, 2 * u:3 * u]
        return h2, c2

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


def expected_shapes(cfg: ModelConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every array weights.npz must hold for `cfg` (Keras layouts; GRU uses reset_after, so its
    bias is (2, 3u): input and recurrent)."""
    u = cfg.units
    g = (4 if cfg.cell == "lstm" else 3) * u
    bias = (g,) if cfg.cell == "lstm" else (2, g)
    shapes: dict[str, tuple[int, ...]] = {}
    if cfg.input == "embedding":
        shapes["embed"] = (vocab_size, cfg.embed_dim)
    for i in range(cfg.layers):
        inp = (vocab_size if cfg.input == "onehot" else cfg.embed_dim) if i == 0 else u
        shapes[f"rnn_{i}/kernel"] = (inp, g)
        shapes[f"rnn_{i}/recurrent_kernel"] = (u, g)
        shapes[f"rnn_{i}/bias"] = bias
    shapes["head/kernel"] = (u, vocab_size)
    shapes["head/bias"] = (vocab_size,)
    return shapes


def check_weights(weights: dict[str, np.ndarray], cfg: ModelConfig, vocab_size: int, where: str = "weights") -> None:
    """Raise ModelFolderError unless `weights` has exactly the arrays of `expected_shapes`, each a floating-point
    array of that shape with only finite values (a NaN weight silently turns every sample into garbage)."""
    want = expected_shapes(cfg, vocab_size)
    missing = [k for k in want if k not in weights]
    if missing:
        raise ModelFolderError(f"{where} is missing array(s) {', '.join(missing)}; the model folder is incomplete")
    extra = sorted(set(weights) - set(want))
    if extra:
        raise ModelFolderError(f"{where} has unexpected array(s) {', '.join(extra)} for a {cfg.layers}-layer "
                               f"{cfg.cell} with {cfg.input} input; the folder's files do not belong together")
    for k, shape in want.items():
        a = weights[k]
        if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
            raise ModelFolderError(f"{where}: {k} has dtype {getattr(a, 'dtype', type(a).__name__)}, expected "
                                   f"floating point; the folder is damaged")
        if a.shape != shape:
            raise ModelFolderError(f"{where}: {k} has shape {a.shape}, config.json and vocab.json ({vocab_size} "
                                   f"tokens) need {shape}; the folder's files do not belong together")
        if not np.isfinite(a).all():
            raise ModelFolderError(f"{where}: {k} holds {int((~np.isfinite(a)).sum())} non-finite value(s) "
                                   f"(NaN or inf); the model is broken, retrain it")


class NumpyStepper:
    """Runs the model of `cfg` one step at a time for a whole batch.

    Speed (the cost is a few matrix products per step; the rest must not add passes over (batch, 4u) arrays):
    the LSTM's gate columns are stored as (i, f, o, g) and the sigmoid columns (and GRU's z, r) are pre-scaled by
    1/2, so σ(x) = ½ tanh(x/2) + ½ needs one tanh over the whole block instead of exp/divide per gate; layers
    above the first multiply [h_below, h_prev] by the stacked [W; U] in one product.
    """

    def __init__(self, weights: dict[str, np.ndarray], cfg: ModelConfig, vocab_size: int):
        self.cfg = cfg
        self.vocab_size = vocab_size
        u = cfg.units
        gates = 4 if cfg.cell == "lstm" else 3
        try:
            w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
            k0 = w["rnn_0/kernel"]
            first = k0 if cfg.input == "onehot" else w["embed"] @ k0
            kernels = [first] + [w[f"rnn_{i}/kernel"] for i in range(1, cfg.layers)]
            recurrent = [w[f"rnn_{i}/recurrent_kernel"] for i in range(cfg.layers)]
            biases = [w[f"rnn_{i}/bias"] for i in range(cfg.layers)]
            self.head_k, self.head_b = w["head/kernel"], w["head/bias"]
        except KeyError as exc:
            raise ModelFolderError(f"weights are missing array {exc}; the model folder is incomplete") from None
        if first.shape[0] != vocab_size:
            raise ModelFolderError(f"weights expect a vocabulary of {first.shape[0]}, vocab.json has {vocab_size}")
        for i, r in enumerate(recurrent):
            if r.shape != (u, gates * u):
                raise ModelFolderError(f"layer {i}: recurrent kernel {r.shape} does not match config "
                                       f"{(u, gates * u)}")
        if cfg.cell == "lstm":
            # Keras order (i, f, g, o) -> (i, f, o, g); halve the three sigmoid gates
            order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]
            scale = np.r_[np.full(3 * u, 0.5), np.ones(u)].astype(np.float32)
            prep = lambda m: np.ascontiguousarray(m[..., order] * scale)  # noqa: E731  (C order: faster products)
            kernels = [prep(k) for k in kernels]
            recurrent = [prep(r) for r in recurrent]
            biases = [prep(b) for b in biases]
            # the bias joins the input projection once, not every step
            self.table0 = np.vstack([kernels[0] + biases[0], biases[0][None]])
            self.stacked = [None] + [np.vstack([kernels[i], recurrent[i]]) for i in range(1, cfg.layers)]
            self.stacked_b = [None] + biases[1:]
        else:
            scale = np.r_[np.full(2 * u, 0.5), np.ones(u)].astype(np.float32)
            kernels = [np.ascontiguousarray(k * scale) for k in kernels]
            recurrent = [np.ascontiguousarray(r * scale) for r in recurrent]
            biases = [b * scale for b in biases]  # (2, 3u): input bias, recurrent bias
            self.table0 = np.vstack([kernels[0] + biases[0][0], biases[0][0][None]])
            self.kernels = [None] + kernels[1:]
            self.b_in = [b[0] for b in biases]
        self.recurrent = recurrent
        self.b_rec = [b[1] if cfg.cell == "gru" else None for b in biases]
        # row `vocab_size` of table0 is the input projection of an all-zero x (id -1)

    def zero_state(self, batch: int) -> list[tuple[np.ndarray, ...]]:
        z = lambda: np.zeros((batch, self.cfg.units), np.float32)  # noqa: E731
        return [(z(), z()) if self.cfg.cell == "lstm" else (z(),) for _ in range(self.cfg.layers)]

    def step(self, ids: np.ndarray, state: list[tuple[np.ndarray, ...]]):
        """ids (batch,) int -> (logits (batch, vocab) float32, new state)."""
        ids = np.asarray(ids)
        rows = np.where(ids < 0, self.vocab_size, ids)
        u = self.cfg.units
        new_state = []
        h = None
        for i in range(self.cfg.layers):
            if self.cfg.cell == "lstm":
                h_prev, c_prev = state[i]
                if i == 0:
                    z = self.table0[rows]
                    z += h_prev @ self.recurrent[0]
                else:
                    z = np.concatenate([h, h_prev], axis=1) @ self.stacked[i]
                    z += self.stacked_b[i]
                np.tanh(z, out=z)
                sig = z[:, :3 * u]
                sig *= 0.5
                sig += 0.5  # now σ of the (i, f, o) gates
                c = sig[:, u:2 * u] * c_prev
                c += sig[:, :u] * z[:, 3 * u:]
                h = np.tanh(c)
                h *= sig[:, 2 * u:3 * u]
                new_state.append((h, c))
            else:
                (h_prev,) = state[i]
                xz = self.table0[rows] if i == 0 else h @ self.kernels[i] + self.b_in[i]
                hz = h_prev @ self.recurrent[i]
                hz += self.b_rec[i]
                zr = np.tanh(xz[:, :2 * u] + hz[:, :2 * u])
                zr *= 0.5
                zr += 0.5
                z_g, r_g = zr[:, :u], zr[:, u:]
                hh = np.tanh(xz[:, 2 * u:] + r_g * hz[:, 2 * u:])
                h = hh + z_g * (h_prev - hh)  # = z h_prev + (1 - z) hh
                new_state.append((h,))
        logits = h @ self.head_k
        logits += self.head_b
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

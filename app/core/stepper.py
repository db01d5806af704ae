"""A numpy step loop over exported Keras weights: the fast, TensorFlow-free inference path.

The cell equations and their numpy steps live in the cell registry (`app.core.cells`); this module stacks layers.
The first layer's input is a token id, so x_t W + b is a row lookup in a table precomputed once (one-hot: W itself;
embedding: E W); id -1 selects an all-zero input (the course's x0 = zeros).
Shapes: ids (batch,), logits (batch, vocab); state is a list with one tuple per layer ((h, c) for an LSTM, (h,) for
a GRU or SimpleRNN), each array (batch, units).
"""

from __future__ import annotations

import numpy as np

from app.core.cells import get_cell
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


def check_weights(weights: dict[str, np.ndarray], cfg: ModelConfig, vocab_size: int, where: str = "weights",
                  layout: bool = True, shapes: dict[str, tuple] | None = None) -> None:
    """Raise ModelFolderError unless `weights` has exactly the arrays of `expected_shapes` (or `shapes`, another
    architecture's), each a floating-point array of that shape with only finite values (a NaN weight silently turns
    every sample into garbage). layout=False: only dtype and finiteness (a model whose arrays are not the shared
    sequence model's, checked by its own loader)."""
    if shapes is not None:
        want = {k: tuple(v) for k, v in shapes.items()}
    elif not layout:
        # another architecture (e.g. a music arch recorded in config.json) has its own arrays: its stepper checks
        # their shapes; every array must still be finite floating point
        want = {k: np.shape(a) for k, a in weights.items()}
    else:
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

    Speed: the cost is a few matrix products per step; the cells' `prepare` reorders and pre-scales the weights
    once so their `step` adds no passes over (batch, gates*u) arrays.
    """

    def __init__(self, weights: dict[str, np.ndarray], cfg: ModelConfig, vocab_size: int):
        self.cfg = cfg
        self.cell = get_cell(cfg.cell)
        self.vocab_size = vocab_size
        u = cfg.units
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
            if r.shape != (u, self.cell.gates * u):
                raise ModelFolderError(f"layer {i}: recurrent kernel {r.shape} does not match config "
                                       f"{(u, self.cell.gates * u)} ({cfg.cell}, {u} units)")
        self.layers = [self.cell.prepare(k, r, b, u) for k, r, b in zip(kernels, recurrent, biases)]
        # row `vocab_size` of table0 is the input projection of an all-zero x (id -1); the bias joins it once
        p0 = self.layers[0]
        self.table0 = np.vstack([p0.kernel + p0.b_in, p0.b_in[None]])

    def zero_state(self, batch: int) -> list[tuple[np.ndarray, ...]]:
        return [tuple(np.zeros((batch, self.cfg.units), np.float32) for _ in range(self.cell.states))
                for _ in range(self.cfg.layers)]

    def step(self, ids: np.ndarray, state: list[tuple[np.ndarray, ...]]):
        """ids (batch,) int -> (logits (batch, vocab) float32, new state)."""
        ids = np.asarray(ids)
        rows = np.where(ids < 0, self.vocab_size, ids)
        new_state = []
        h = None
        for i, p in enumerate(self.layers):
            if i == 0:
                xz = self.table0[rows]  # fancy indexing copies: the cell may update it in place
            else:
                xz = h @ p.kernel
                xz += p.b_in
            layer_state = self.cell.step(xz, state[i], p)
            h = layer_state[0]
            new_state.append(layer_state)
        logits = h @ self.head_k
        logits += self.head_b
        return logits, new_state

    def select(self, state, keep: np.ndarray):
        """Keep only the batch rows `keep` (bool mask or indices) of a state, to drop finished sequences."""
        return [tuple(s[keep] for s in layer) for layer in state]

    def runner(self):
        """A batch-1 runner (app.core.runner) for LSTM stacks; None for other cells (runner_for then wraps
        `step`)."""
        return LSTMStackRunner(self) if self.cfg.cell == "lstm" else None

    def run(self, ids: np.ndarray, state=None) -> np.ndarray:
        """Teacher-forced: ids (batch, time) -> logits (batch, time, vocab)."""
        ids = np.asarray(ids)
        state = self.zero_state(ids.shape[0]) if state is None else state
        out = np.empty(ids.shape + (self.vocab_size,), np.float32)
        for t in range(ids.shape[1]):
            out[:, t], state = self.step(ids[:, t], state)
        return out


class LSTMStackRunner:
    """Batch-1 runner of a NumpyStepper's LSTM stack (see app.core.runner): per layer and step one add, the cell's
    in-place update and one product [h, 1] @ [[U | next], [0 | next bias]], where `next` is the next layer's
    kernel or the head; kind "logits"."""

    kind = "logits"

    def __init__(self, stepper: NumpyStepper):
        from app.core.runner import LSTM1, fused, product

        self.vocab_size = stepper.vocab_size
        u, layers = stepper.cfg.units, stepper.layers
        self.table0 = stepper.table0  # (V + 1, 4u): row V is the zero input
        self.hx, self.cells, self.mats, self.outs = [], [], [], []
        for i, p in enumerate(layers):
            nxt, nxt_b = ((layers[i + 1].kernel, layers[i + 1].b_in) if i + 1 < len(layers)
                          else (stepper.head_k, stepper.head_b))
            hx = np.zeros(u + 1, np.float32)
            hx[u] = 1.0
            self.hx.append(hx)
            self.cells.append(LSTM1(u, hx[:u]))
            self.mats.append(fused(p.recurrent, nxt, nxt_b))
            self.outs.append(np.zeros(4 * u + nxt.shape[1], np.float32))  # [h U (next step) | next input]
        self.products = [product(hx, m, o) for hx, m, o in zip(self.hx, self.mats, self.outs)]
        self.logits = self.outs[-1][4 * u:]
        self.step = self._one_layer() if len(layers) == 1 else self._stack()

    def _one_layer(self):
        table, V = list(self.table0), self.vocab_size  # row views, made once
        z, update, mat_product = self.cells[0].z, self.cells[0].update, self.products[0]
        rec, logits = self.outs[0][:z.size], self.logits
        add = np.add

        def step(token: int) -> np.ndarray:
            add(rec, table[token if token >= 0 else V], z)
            update()
            mat_product()  # [h, 1] @ [[U | head], [0 | bias]]
            return logits

        return step

    def _stack(self):
        table, V = list(self.table0), self.vocab_size
        g = self.cells[0].z.size
        layers = [(c.z, c.update, p, o[:g], o[g:]) for c, p, o in zip(self.cells, self.products, self.outs)]
        logits = self.logits

        def step(token: int) -> np.ndarray:
            x = table[token if token >= 0 else V]
            for z, update, mat_product, rec, nxt in layers:
                np.add(rec, x, z)
                update()
                mat_product()
                x = nxt
            return logits

        return step

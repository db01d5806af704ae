"""The recurrent cells the app knows, in one registry (no TensorFlow import here).

Each entry says everything the three users need (the Keras builder `app.core.model`, the numpy stepper
`app.core.stepper`, the document's models `app.music.models`):
  keras_layer  the class name in `keras.layers` (looked up lazily, so this module stays numpy-only)
  gates        columns of the kernels per unit: kernel (input, gates*u), recurrent_kernel (u, gates*u)
  states       state arrays per layer: LSTM (h, c), GRU and SimpleRNN (h,)
  prepare      Keras weights (kernel, recurrent_kernel, bias) -> Prepared arrays for `step` (done once at load)
  step         numpy step: (xz, state, prepared) -> new state tuple, whose first array is the output h

`xz` is the input projection x_t W + b_in (batch, gates*u): the stepper computes it (for the first layer a row
lookup in a precomputed table) and `step` adds the recurrent part. Adding a cell = one `register(Cell(...))` with
its `prepare` and `step` (see "rnn" below); the config's choices, the CLI's choices and both Keras builders follow.

Equations (Keras conventions, units u):
  LSTM  z = x_t W + h U + b;  i, f, g, o = σ(z_i), σ(z_f), tanh(z_g), σ(z_o);  c' = f c + i g;  h' = o tanh(c')
  GRU   (reset_after)  xz, xr, xh = x_t W + b_in;  hz, hr, hh = h U + b_rec
        z = σ(xz + hz);  r = σ(xr + hr);  ĥ = tanh(xh + r hh);  h' = z h + (1 - z) ĥ
  RNN   h' = tanh(x_t W + h U + b)
Speed: the LSTM's gate columns are stored as (i, f, o, g) and the sigmoid columns (and GRU's z, r) are pre-scaled
by 1/2, so σ(x) = ½ tanh(x/2) + ½ needs one tanh over the whole block instead of exp/divide per gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from app.errors import OptionError


class Prepared(NamedTuple):
    """One layer's weights in the stepper's layout: kernel (in, gates*u), recurrent (u, gates*u), b_in
    (gates*u,) added to the input projection, b_rec (gates*u,) or None added to h U each step."""

    kernel: np.ndarray
    recurrent: np.ndarray
    b_in: np.ndarray
    b_rec: np.ndarray | None


@dataclass(frozen=True)
class Cell:
    name: str
    keras_layer: str
    gates: int
    states: int
    prepare: Callable[[np.ndarray, np.ndarray, np.ndarray, int], Prepared]
    step: Callable[[np.ndarray, tuple, Prepared], tuple]
    doc: str = ""

    def layer_class(self):
        """The Keras layer class (imports Keras)."""
        import keras

        return getattr(keras.layers, self.keras_layer)


CELLS: dict[str, Cell] = {}


def register(cell: Cell) -> Cell:
    CELLS[cell.name] = cell
    return cell


def get_cell(name: str) -> Cell:
    """The registered cell called `name`; anything else is an OptionError listing the known ones."""
    try:
        return CELLS[name]
    except (KeyError, TypeError):
        raise OptionError(f"unknown cell {name!r}; known cells: {', '.join(CELLS)}") from None


def cell_of_layer(layer) -> Cell:
    """The registered cell whose Keras class is that of `layer` (e.g. the document's LSTM_cell)."""
    for cell in CELLS.values():
        if type(layer).__name__ == cell.keras_layer:
            return cell
    raise OptionError(f"layer {layer.name!r} is a {type(layer).__name__}, not one of the registered cells "
                      f"({', '.join(c.keras_layer for c in CELLS.values())})")


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)  # C order: faster products


# --- LSTM ----------------------------------------------------------------------------------------------------------
def _lstm_prepare(kernel, recurrent, bias, u) -> Prepared:
    order = np.r_[0:2 * u, 3 * u:4 * u, 2 * u:3 * u]  # Keras (i, f, g, o) -> (i, f, o, g)
    scale = np.r_[np.full(3 * u, 0.5), np.ones(u)].astype(np.float32)  # halve the three sigmoid gates
    return Prepared(_c(kernel[:, order] * scale), _c(recurrent[:, order] * scale), _c(bias[order] * scale), None)


def _lstm_step(xz, state, p: Prepared):
    h_prev, c_prev = state
    u = h_prev.shape[1]
    z = xz  # a fresh array from the stepper: updated in place
    z += h_prev @ p.recurrent
    np.tanh(z, out=z)
    sig = z[:, :3 * u]
    sig *= 0.5
    sig += 0.5  # now σ of the (i, f, o) gates
    c = sig[:, u:2 * u] * c_prev
    c += sig[:, :u] * z[:, 3 * u:]
    h = np.tanh(c)
    h *= sig[:, 2 * u:3 * u]
    return h, c


# --- GRU (reset_after=True: bias (2, 3u) = input bias, recurrent bias) ---------------------------------------------
def _gru_prepare(kernel, recurrent, bias, u) -> Prepared:
    scale = np.r_[np.full(2 * u, 0.5), np.ones(u)].astype(np.float32)
    bias = np.asarray(bias).reshape(2, 3 * u)
    return Prepared(_c(kernel * scale), _c(recurrent * scale), _c(bias[0] * scale), _c(bias[1] * scale))


def _gru_step(xz, state, p: Prepared):
    (h_prev,) = state
    u = h_prev.shape[1]
    hz = h_prev @ p.recurrent
    hz += p.b_rec
    zr = np.tanh(xz[:, :2 * u] + hz[:, :2 * u])
    zr *= 0.5
    zr += 0.5
    z_g, r_g = zr[:, :u], zr[:, u:]
    hh = np.tanh(xz[:, 2 * u:] + r_g * hz[:, 2 * u:])
    return (hh + z_g * (h_prev - hh),)  # = z h_prev + (1 - z) hh


# --- SimpleRNN -----------------------------------------------------------------------------------------------------
def _rnn_prepare(kernel, recurrent, bias, u) -> Prepared:
    return Prepared(_c(kernel), _c(recurrent), _c(bias), None)


def _rnn_step(xz, state, p: Prepared):
    z = xz
    z += state[0] @ p.recurrent
    return (np.tanh(z, out=z),)


register(Cell("lstm", "LSTM", 4, 2, _lstm_prepare, _lstm_step, "long short-term memory (the course's cell)"))
register(Cell("gru", "GRU", 3, 1, _gru_prepare, _gru_step, "gated recurrent unit (reset_after)"))
register(Cell("rnn", "SimpleRNN", 1, 1, _rnn_prepare, _rnn_step, "plain tanh RNN (the course's dinosaur RNN)"))

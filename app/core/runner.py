"""Batch-1 incremental decoding: the runner protocol, a generic runner, and a buffered one-row LSTM (numpy only).

Generating one melody (or name) calls the model once per step with one row; at that size numpy's cost is the
per-call overhead of each small operation and the allocations, not the arithmetic. A *runner* is a stepper's
batch-1 decoder that owns preallocated buffers and runs each step as a short fixed sequence of in-place numpy
calls (the output array passed positionally, which numpy parses faster than `out=`), with the step's tables
(lookback rows, context projections, their row views) precomputed once:

    runner = runner_for(stepper)        # stepper.runner() when the stepper has one, else StepRunner(stepper)
    scores = runner.step(token)         # token: int, -1 for the zero input x0; returns (V,) float32
    runner.kind                         # "logits" (unnormalised log-probabilities) or "probs" (unnormalised,
                                        # >= 0: the token probabilities times any positive constant)

`scores` is a view of the runner's buffer, valid until the next `step` (copy it to keep it). A runner is the same
model as its stepper's `step` at batch 1 (tests/test_runner.py checks every arch's against it).

The LSTM part (`LSTM1`) uses the layout of `app.core.cells` (columns (i, f, o, g), sigmoid columns halved, so one
tanh gives every gate) and two fusions that cut the calls per step:
  * one product per layer and step: the new h multiplies [recurrent kernel | next matrix] at once, giving the next
    step's h U and this step's input to the next layer (or the logits); the bias of the next matrix is its last
    row, multiplied by a constant 1 stored after h;
  * the cell state sits right after the g gate, so i*g and f*c are one multiplication of two 2u-long views.
"""

from __future__ import annotations

import numpy as np

KINDS = ("logits", "probs")


class StepRunner:
    """Any stepper (`step(ids (b,), state) -> (logits (b, V), state)`) as a batch-1 runner (no speed-up)."""

    kind = "logits"

    def __init__(self, stepper):
        self.stepper = stepper
        self.vocab_size = stepper.vocab_size
        self.state = stepper.zero_state(1)

    def step(self, token: int) -> np.ndarray:
        logits, self.state = self.stepper.step(np.array([token], np.int64), self.state)
        return np.asarray(logits, np.float32)[0]


def runner_for(stepper):
    """The stepper's own batch-1 runner when it has one (and can run this model), else a StepRunner."""
    make = getattr(stepper, "runner", None)
    runner = make() if make is not None else None
    return runner if runner is not None else StepRunner(stepper)


class LSTM1:
    """One LSTM row in preallocated buffers.

    z (4u,): the caller writes the gate pre-activations there (x W + h U + b, in the prepared layout);
    `update()` turns them into the new cell state `c` (u,) and writes h = o * tanh(c) into `h` (a (u,) view the
    caller owns, e.g. the first u entries of [h, 1] or [h, a, 1]). Starts from c = 0.
    """

    def __init__(self, units: int, h: np.ndarray):
        u = self.units = units
        if h.shape != (u,) or h.dtype != np.float32:
            raise ValueError(f"h must be a float32 view of shape ({u},), got {h.dtype} {h.shape}")
        self.buf = np.zeros(5 * u, np.float32)  # [i f o g | c]
        self.z, self.c, self.h = self.buf[:4 * u], self.buf[4 * u:], h
        self.update = _lstm_update(self.buf, h, u)

    def reset(self) -> None:
        self.buf[:] = 0.0
        self.h[:] = 0.0


def _lstm_update(buf: np.ndarray, h: np.ndarray, u: int):
    """The in-place step as a closure over fixed views (no slicing or attribute look-ups per call)."""
    z = buf[:4 * u]
    sig = buf[:3 * u]
    i_f = buf[:2 * u]
    g_c = buf[3 * u:5 * u]
    c = buf[4 * u:]
    o = buf[2 * u:3 * u]
    prod = np.empty(2 * u, np.float32)
    ig, fc = prod[:u], prod[u:]
    tanh, mul, add = np.tanh, np.multiply, np.add

    def update() -> None:
        tanh(z, z)
        mul(sig, 0.5, sig)
        add(sig, 0.5, sig)  # σ of (i, f, o)
        mul(i_f, g_c, prod)  # (i*g, f*c) in one call: c follows g in the buffer
        add(ig, fc, c)
        tanh(c, h)
        mul(h, o, h)

    return update


MAX_PRODUCT = 400_000  # elements of one vector-matrix product (see `product`)


def product(x: np.ndarray, mat: np.ndarray, out: np.ndarray):
    """A zero-argument function computing out = x @ mat (x (k,), mat (k, m), out (m,), all float32).

    numpy's OpenBLAS runs a vector-matrix product of k * m >= 460,800 elements on several threads; at batch 1 on a
    busy 2-core machine that was measured 2 to 200 times slower than one thread (a 513 x 1280 product: 34 us on one
    thread, 64 us at best and 2.2 ms typically on two). So a larger matrix is split into column blocks of at most
    MAX_PRODUCT elements (C-ordered copies), one product each, written into the matching slices of `out`."""
    from functools import partial

    k, m = mat.shape
    width = max(1, MAX_PRODUCT // max(k, 1))
    if width >= m:
        return partial(np.dot, x, mat, out)
    blocks = [(np.ascontiguousarray(mat[:, a:a + width]), out[a:a + width]) for a in range(0, m, width)]
    dot = np.dot

    def run() -> None:
        for block, part in blocks:
            dot(x, block, part)

    return run


def fused(first: np.ndarray, second: np.ndarray, second_bias: np.ndarray | None = None) -> np.ndarray:
    """[[first | second], [0 | second_bias]] as one C-ordered float32 matrix: [h, 1] @ it = [h first | h second +
    bias]. first (u, m), second (u, k), bias (k,) (zeros if None) -> (u + 1, m + k)."""
    u = first.shape[0]
    out = np.zeros((u + 1, first.shape[1] + second.shape[1]), np.float32)
    out[:u, :first.shape[1]] = first
    out[:u, first.shape[1]:] = second
    if second_bias is not None:
        out[u, first.shape[1]:] = second_bias
    return out


def logit_bound(head_k: np.ndarray, head_b: np.ndarray, h_max: float = 1.0) -> float:
    """An upper bound of |logit| for any h with |h_i| <= h_max (an LSTM's h = o tanh(c) is in (-1, 1)):
    max_j (h_max * sum_i |W_ij| + |b_j|). Below ~80, exp(logits) cannot overflow float32 without the max shift."""
    return float((h_max * np.abs(head_k).sum(axis=0) + np.abs(head_b)).max())

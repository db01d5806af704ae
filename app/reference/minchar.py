"""min-char-rnn (seed 003, after Karpathy): a character-level vanilla RNN trained with Adagrad on text chunks.

Notation of the document (hjimce's translation). Characters are one-hot x_t (V,); hidden state h_t (H,):

    h_t = tanh(W_xh · x_t + W_hh · h_{t-1} + b_h)
    y_t = W_hy · h_t + b_y,      p_t = softmax(y_t)
    L   = Σ_t −log p_t[target_t]                     (nats, summed over the chunk)

Backpropagation through time, from the last step down, with dh_next = 0 after the chunk:

    dy_t     = p_t − onehot(target_t)
    dW_hy   += dy_t · h_tᵀ,     db_y += dy_t
    dh_t     = W_hyᵀ · dy_t + dh_next
    draw_t   = (1 − h_t²) ∗ dh_t                      (through tanh)
    db_h    += draw_t,  dW_xh += draw_t · x_tᵀ,  dW_hh += draw_t · h_{t-1}ᵀ
    dh_next  = W_hhᵀ · draw_t

then every gradient is clipped element-wise to [−5, 5]. Training walks the text in chunks of `seq_length`
characters (targets are the inputs shifted by one), carries h between chunks, resets h = 0 at the start of the text,
and updates with Adagrad:  mem += dθ²;  θ −= lr · dθ / √(mem + 1e-8).  The printed loss is smoothed:
smooth = 0.999 · smooth + 0.001 · L, starting at −log(1/V) · seq_length.

An input may be None: x_t = 0 (the course's x⟨1⟩ = 0 before the first character, used by `dinos_rnn`).
One-hot products are done by column indexing: W_xh · x_t = W_xh[:, ix].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from app.errors import DataError, OptionError

PARAM_NAMES = ("Wxh", "Whh", "Why", "bh", "by")
CLIP = 5.0


def init_params(vocab_size: int, hidden_size: int, rng) -> dict[str, np.ndarray]:
    """W ~ N(0, 1) · 0.01, biases 0, as in the document. `rng`: np.random.Generator or RandomState (its randn)."""
    normal = rng.standard_normal
    return {"Wxh": normal((hidden_size, vocab_size)) * 0.01, "Whh": normal((hidden_size, hidden_size)) * 0.01,
            "Why": normal((vocab_size, hidden_size)) * 0.01, "bh": np.zeros(hidden_size), "by": np.zeros(vocab_size)}


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max())
    return e / e.sum()


def forward(params: dict, inputs: Sequence[int | None], h_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward pass over one chunk -> hs (T + 1, H) with hs[-1] = h_prev (so hs[t - 1] is h_{t-1}), ps (T, V)."""
    Wxh, Whh, Why, bh, by = (params[k] for k in PARAM_NAMES)
    T = len(inputs)
    hs = np.empty((T + 1, Whh.shape[0]))
    hs[-1] = h_prev
    ps = np.empty((T, Why.shape[0]))
    for t in range(T):
        pre = Whh @ hs[t - 1] + bh
        if inputs[t] is not None:
            pre = pre + Wxh[:, inputs[t]]
        hs[t] = np.tanh(pre)
        ps[t] = _softmax(Why @ hs[t] + by)
    return hs, ps


def sequence_loss(params: dict, inputs: Sequence[int | None], targets: Sequence[int],
                  h_prev: np.ndarray) -> tuple[float, np.ndarray]:
    """Forward only -> (Σ_t −log p_t[target_t] in nats, last hidden state)."""
    hs, ps = forward(params, inputs, h_prev)
    return float(-np.log(ps[np.arange(len(targets)), targets]).sum()), hs[len(inputs) - 1].copy()


def loss_and_grads(params: dict, inputs: Sequence[int | None], targets: Sequence[int], h_prev: np.ndarray,
                   clip: float | None = CLIP):
    """Forward + BPTT over one chunk -> (loss in nats summed over steps, grads dict, last hidden state).

    inputs[t] is a character index or None (zero input); targets[t] is the index to predict at step t.
    clip=None returns the raw gradients (for gradient checks).
    """
    Wxh, Whh, Why, bh, by = (params[k] for k in PARAM_NAMES)
    T = len(inputs)
    hs, ps = forward(params, inputs, h_prev)
    loss = float(-np.log(ps[np.arange(T), targets]).sum())
    grads = {k: np.zeros_like(params[k]) for k in PARAM_NAMES}
    dy = ps.copy()
    dy[np.arange(T), targets] -= 1.0
    grads["Why"] = dy.T @ hs[:T]
    grads["by"] = dy.sum(axis=0)
    dh_next = np.zeros_like(bh)
    draws = np.empty((T, bh.shape[0]))
    for t in reversed(range(T)):
        dh = Why.T @ dy[t] + dh_next
        draws[t] = (1.0 - hs[t] ** 2) * dh
        dh_next = Whh.T @ draws[t]
    grads["bh"] = draws.sum(axis=0)
    grads["Whh"] = draws.T @ hs[np.arange(T) - 1]
    for t in range(T):
        if inputs[t] is not None:
            grads["Wxh"][:, inputs[t]] += draws[t]
    if clip is not None:
        for g in grads.values():
            np.clip(g, -clip, clip, out=g)
    return loss, grads, hs[T - 1].copy()


def grad_check(params: dict, inputs, targets, h_prev, rng: np.random.Generator, checks: int = 10,
               delta: float = 1e-5) -> float:
    """Largest relative error |num − analytic| / (|num| + |analytic|) over `checks` random entries of each matrix,
    central differences, unclipped gradients (the document's gradcheck)."""
    _, grads, _ = loss_and_grads(params, inputs, targets, h_prev, clip=None)
    worst = 0.0
    for name in PARAM_NAMES:
        p = params[name]
        for _ in range(checks):
            ix = tuple(int(rng.integers(0, n)) for n in p.shape)
            old = p[ix]
            p[ix] = old + delta
            plus = sequence_loss(params, inputs, targets, h_prev)[0]
            p[ix] = old - delta
            minus = sequence_loss(params, inputs, targets, h_prev)[0]
            p[ix] = old
            num, ana = (plus - minus) / (2 * delta), grads[name][ix]
            if num != 0.0 or ana != 0.0:
                worst = max(worst, abs(num - ana) / (abs(num) + abs(ana)))
    return worst


def sample_ids(params: dict, h: np.ndarray, seed_ix: int | None, n: int, rng: np.random.Generator,
               stop_ix: int | None = None) -> list[int]:
    """Draw up to n indices, one random choice per step from p_t, feeding each back; stop after `stop_ix`."""
    Wxh, Whh, Why, bh, by = (params[k] for k in PARAM_NAMES)
    ix, out = seed_ix, []
    for _ in range(n):
        pre = Whh @ h + bh
        if ix is not None:
            pre = pre + Wxh[:, ix]
        h = np.tanh(pre)
        p = _softmax(Why @ h + by)
        ix = int(rng.choice(len(p), p=p))
        out.append(ix)
        if ix == stop_ix:
            break
    return out


@dataclass
class MinCharRNN:
    """A trained min-char-rnn: parameters, its characters (index = position) and (iteration, smooth loss) history."""

    params: dict
    chars: tuple[str, ...]
    history: list[tuple[int, float]] = field(default_factory=list)

    def ids(self, text: str) -> list[int]:
        index = {ch: i for i, ch in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise DataError(f"text has character(s) {', '.join(map(repr, unknown[:10]))} not seen in training")
        return [index[ch] for ch in text]


def train(text: str, iterations: int, *, hidden_size: int = 100, seq_length: int = 25, learning_rate: float = 0.1,
          seed: int = 0, log: Callable[[int, float, "MinCharRNN"], None] | None = None,
          log_every: int = 100) -> MinCharRNN:
    """Train on `text` for `iterations` chunks (Adagrad, clip ±5); `log(n, smooth_loss, model)` every log_every."""
    if len(text) < seq_length + 2:
        raise DataError(f"text has {len(text)} characters; min-char-rnn needs more than seq_length + 1 "
                        f"({seq_length + 1})")
    if iterations < 0 or hidden_size < 1 or seq_length < 1 or not learning_rate > 0:
        raise OptionError("iterations >= 0, hidden_size >= 1, seq_length >= 1 and learning_rate > 0 are required")
    rng = np.random.default_rng(seed)
    chars = tuple(sorted(set(text)))
    model = MinCharRNN(init_params(len(chars), hidden_size, rng), chars)
    data = model.ids(text)
    mem = {k: np.zeros_like(v) for k, v in model.params.items()}
    smooth = -np.log(1.0 / len(chars)) * seq_length
    p, h = 0, np.zeros(hidden_size)
    for n in range(iterations):
        if p + seq_length + 1 >= len(data) or n == 0:
            p, h = 0, np.zeros(hidden_size)
        loss, grads, h = loss_and_grads(model.params, data[p:p + seq_length], data[p + 1:p + seq_length + 1], h)
        smooth = 0.999 * smooth + 0.001 * loss
        for k, g in grads.items():
            mem[k] += g * g
            model.params[k] -= learning_rate * g / np.sqrt(mem[k] + 1e-8)
        p += seq_length
        if n % log_every == 0 or n == iterations - 1:
            model.history.append((n, float(smooth)))
            if log is not None:
                log(n, float(smooth), model)
    return model


def nats_per_char(model: MinCharRNN, text: str) -> float:
    """Mean −log p(next char) over `text`, reading it from h = 0: text[1:] predicted from text[:-1]."""
    data = model.ids(text)
    if len(data) < 2:
        raise DataError("need at least 2 characters to measure nats/char")
    loss, _ = sequence_loss(model.params, data[:-1], data[1:], np.zeros(model.params["bh"].shape))
    return loss / (len(data) - 1)

"""`attention`: Magenta's Attention RNN (tf.contrib AttentionCellWrapper) in the document's loop.

One shared cell applied step by step (u units, N = attn_length, d = attn_dim):
    x_t   = [ one-hot s[t-1] (V) | bar-position counter and metre one-hot (features.MetreContext) ]
    h, c  = LSTM([x_t, a_{t-1}], (h, c))                      the previous attention vector is an input too
    e_j   = v · tanh(m_j K + h Q + q)   for the N memory slots m_j (the last N outputs; zeros before the start)
    a_t   = Σ softmax(e)_j m_j                                 attention over the last N cell outputs
    o_t   = [h, a_t] W_o + b_o                                 the cell output, appended to the memory
    logits = o_t W_head + b_head                               one densor over the V tokens
Why this shape: the memory reaches N steps back (default 64 = four 4/4 bars) and the attention can copy the
output of the step that began the phrase being repeated, which a plain LSTM must carry in its state; the bar
counter in x_t lets the query find "the same place N bars ago". Unlike `lookback` the distance is not fixed in
bars, so the model chooses what to reuse. Costs per step: N * d for the scores and N * u for the weighted sum.
The memory is order-free (attention has no positions), so the numpy stepper keeps it as a ring buffer and caches
each slot's key m_j K once. The Keras side (attention_keras.py) is the same cell as a registered layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.core.config import check_range
from app.errors import DataError, ModelFolderError, OptionError
from app.music.archs.base import Arch, register
from app.music.archs.features import DEFAULT_METRES, GRID_START, MetreContext, parse_time_signature
from app.music.archs.numpy_cell import NumpyLSTM


@dataclass(frozen=True)
class AttentionSettings:
    attn_length: int = field(default=64, metadata={"help": "attention memory: the last N cell outputs (steps; "
                                                           "default 64 = four 4/4 bars)"})
    attn_dim: int = field(default=64, metadata={"help": "size of the attention's hidden layer (default 64)"})
    counter_bits: int = field(default=5, metadata={"help": "bits of the bar-position counter (default 5: 32 steps)"})
    metres: tuple[str, ...] = field(default=DEFAULT_METRES, metadata={
        "help": "time signatures with their own metre input, comma-separated; others share one 'other' input"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "metres", tuple(str(m) for m in self.metres))
        check_range("attn_length", self.attn_length, 1, 1024)
        check_range("attn_dim", self.attn_dim, 1, 1024)
        check_range("counter_bits", self.counter_bits, 1, 12)
        for m in self.metres:
            parse_time_signature(m)

    def context(self, spq: int) -> MetreContext:
        return MetreContext(self.counter_bits, self.metres, spq)


WEIGHT_KEYS = ("rnn_0/kernel", "rnn_0/recurrent_kernel", "rnn_0/bias", "attn/key", "attn/query", "attn/query_bias",
               "attn/v", "attn/out_kernel", "attn/out_bias", "head/kernel", "head/bias")


def input_size(settings: AttentionSettings, vocab_size: int, spq: int = 4) -> int:
    """Size of x_t (the cell's input without the attention vector)."""
    return vocab_size + settings.context(spq).size


def training_arrays(pieces: Sequence[np.ndarray], metres, settings: AttentionSettings, vocab_size: int, spq: int,
                    tx: int):
    """({"ids", "context"}, Y, W) in chunks of tx steps, as app.music.train.sequence_chunks plus the metre rows."""
    from app.music.train import MAX_TX

    if not 1 <= tx <= MAX_TX:
        raise OptionError(f"--tx must be 1..{MAX_TX} steps, got {tx}")
    ctx = settings.context(spq)
    xs, cs, ys, ws = [], [], [], []
    for p, changes in zip(pieces, metres):
        p = np.asarray(p, np.int64)
        if len(p) == 0:
            continue
        T = len(p)
        pad = -T % tx
        _, pos, cls = ctx.grid(T, changes)
        xs.append(np.pad(np.concatenate([[-1], p[:-1]]), (0, pad)).reshape(-1, tx).astype(np.int32))
        cs.append(np.pad(ctx.rows(pos, cls).astype(np.int8), ((0, pad), (0, 0))).reshape(-1, tx, ctx.size))
        ys.append(np.pad(p, (0, pad)).reshape(-1, tx).astype(np.int32))
        ws.append(np.pad(np.ones(T, np.float32), (0, pad)).reshape(-1, tx))
    if not xs:
        raise DataError("no training data: every piece is empty")
    return {"ids": np.concatenate(xs), "context": np.concatenate(cs)}, np.concatenate(ys), np.concatenate(ws)


class AttentionStepper:
    """The fast path (no TensorFlow). State: (h, c, a, memory (b, N, u), keys (b, N, d), t); slot t % N is the
    next one written. `run` takes a metre per row; generation one metre for the batch."""

    def __init__(self, weights: dict, model_cfg, settings: AttentionSettings, vocab_size: int, *,
                 time_signature=(4, 4), spq: int = 4):
        if model_cfg.cell != "lstm" or model_cfg.layers != 1:
            raise ModelFolderError("the attention arch has one LSTM layer; the config says "
                                   f"cell={model_cfg.cell}, layers={model_cfg.layers}")
        missing = [k for k in WEIGHT_KEYS if k not in weights]
        if missing:
            raise ModelFolderError(f"weights are missing {', '.join(missing)}; the model folder is incomplete")
        w = {k: np.asarray(v, np.float32) for k, v in weights.items()}
        self.settings, self.vocab_size, self.spq = settings, vocab_size, spq
        self.ctx = settings.context(spq)
        V, F = vocab_size, input_size(settings, vocab_size, spq)
        if w["rnn_0/kernel"].shape[0] != F + model_cfg.units or w["head/kernel"].shape[1] != V:
            raise ModelFolderError(f"attention weights (input {w['rnn_0/kernel'].shape[0]}) do not match "
                                   f"vocabulary {V}, units {model_cfg.units} and settings {settings}")
        self.cell = NumpyLSTM(w["rnn_0/kernel"], w["rnn_0/recurrent_kernel"], w["rnn_0/bias"])
        K = self.cell.kernel
        self.t_prev = np.vstack([K[:V] + self.cell.bias, self.cell.bias[None]])  # row V: the zero input
        self.w_ctx = K[V:F]
        self.w_attn = K[F:]
        self.key, self.query, self.query_b, self.v = w["attn/key"], w["attn/query"], w["attn/query_bias"], w["attn/v"]
        u = model_cfg.units
        self.out_h, self.out_a, self.out_b = w["attn/out_kernel"][:u], w["attn/out_kernel"][u:], w["attn/out_bias"]
        self.head_k, self.head_b = w["head/kernel"], w["head/bias"]
        self.units, self.N = u, settings.attn_length
        self.key_b = np.zeros(self.key.shape[1], np.float32)  # the key of an all-zero slot is 0
        self.set_metre(time_signature)

    def set_metre(self, time_signature) -> None:
        self.time_signature = parse_time_signature(time_signature)
        self._grid_len = 0
        self._grow(GRID_START)

    def _grow(self, length: int) -> None:
        length = max(length, 2 * self._grid_len)
        _, pos, cls = self.ctx.grid(length, [(0, *self.time_signature)])
        self.ctx_proj = self.ctx.rows(pos, cls) @ self.w_ctx
        self._grid_len = length

    def runner(self) -> "AttentionRunner":
        """A batch-1 runner (app.core.runner) in this stepper's metre; kind "logits"."""
        return AttentionRunner(self)

    def zero_state(self, batch: int):
        u, N, d = self.units, self.N, self.key.shape[1]
        z = np.zeros((batch, u), np.float32)
        return (z, z.copy(), z.copy(), np.zeros((batch, N, u), np.float32), np.zeros((batch, N, d), np.float32), 0)

    def select(self, state, keep):
        h, c, a, mem, keys, t = state
        return (h[keep], c[keep], a[keep], mem[keep], keys[keep], t)

    def _cell(self, zx, state):
        h, c, a, mem, keys, t = state
        zx = zx + a @ self.w_attn
        h, c = self.cell.step(zx, h, c)
        e = np.tanh(keys + (h @ self.query + self.query_b)[:, None, :]) @ self.v  # (b, N)
        e -= e.max(axis=1, keepdims=True)
        p = np.exp(e)
        p /= p.sum(axis=1, keepdims=True)
        a = np.einsum("bn,bnu->bu", p, mem)
        out = h @ self.out_h + a @ self.out_a + self.out_b
        slot = t % self.N  # written in place: a state is used once (beam search's `select` copies rows)
        mem[:, slot] = out
        keys[:, slot] = out @ self.key
        logits = out @ self.head_k + self.head_b
        return logits, (h, c, a, mem, keys, t + 1)

    def step(self, ids, state):
        """ids (batch,) -> (token logits (batch, V), new state)."""
        ids = np.asarray(ids, np.int64)
        t = state[-1]
        if t >= self._grid_len:
            self._grow(t + 1)
        zx = self.t_prev[np.where(ids < 0, self.vocab_size, ids)] + self.ctx_proj[t]
        return self._cell(zx, state)

    def run(self, ids: np.ndarray, metres=None) -> np.ndarray:
        """Teacher-forced: ids (batch, T) -> token logits (batch, T, V); metres: per-row metre changes."""
        ids = np.asarray(ids, np.int64)
        b, T = ids.shape
        metres = metres if metres is not None else [[(0, *self.time_signature)]] * b
        ctx_proj = np.empty((b, T, self.w_ctx.shape[1]), np.float32)
        for r in range(b):
            _, pos, cls = self.ctx.grid(T, metres[r])
            ctx_proj[r] = self.ctx.rows(pos, cls) @ self.w_ctx
        state = self.zero_state(b)
        out = np.empty((b, T, self.vocab_size), np.float32)
        for t in range(T):
            zx = self.t_prev[np.where(ids[:, t] < 0, self.vocab_size, ids[:, t])] + ctx_proj[:, t]
            out[:, t], state = self._cell(zx, state)
        return out


def weight_shapes(model_cfg, settings: AttentionSettings, vocab_size: int, spq: int = 4) -> dict[str, tuple]:
    """The arrays of weights.npz and their shapes: the LSTM reads x_t and the previous attention vector."""
    u, d = model_cfg.units, settings.attn_dim
    return {"rnn_0/kernel": (input_size(settings, vocab_size, spq) + u, 4 * u), "rnn_0/recurrent_kernel": (u, 4 * u),
            "rnn_0/bias": (4 * u,), "attn/key": (u, d), "attn/query": (u, d), "attn/query_bias": (d,),
            "attn/v": (d,), "attn/out_kernel": (2 * u, u), "attn/out_bias": (u,), "head/kernel": (u, vocab_size),
            "head/bias": (vocab_size,)}


class AttentionRunner:
    """The attention model at batch 1 (app.core.runner protocol), token logits (V,).

    Buffers: ha = [h, a, 1]; one product ha @ [[U ; W_a ; 0] | [W_o ; b_o]] gives the next step's recurrent input
    (h U + a W_a) and this step's output o; [o, 1] @ [[K | W_head] ; [q_b | b_head]] gives o's key (stored with the
    query bias added, so a score is v . tanh(key + h Q)) and the logits. The scores are bounded by sum |v| (tanh is
    in [-1, 1]), so the softmax skips its max shift when that bound is small."""

    kind = "logits"

    def __init__(self, stepper: AttentionStepper):
        from app.core.runner import LSTM1, product

        self.stepper = st = stepper
        self.vocab_size = V = st.vocab_size
        u, N, d = st.units, st.N, st.key.shape[1]
        g = 4 * u
        self.ha = np.zeros(2 * u + 1, np.float32)
        self.ha[2 * u] = 1.0
        self.lstm = LSTM1(u, self.ha[:u])
        m1 = np.zeros((2 * u + 1, g + u), np.float32)
        m1[:u, :g], m1[u:2 * u, :g] = st.cell.recurrent, st.w_attn
        m1[:u, g:], m1[u:2 * u, g:], m1[2 * u, g:] = st.out_h, st.out_a, st.out_b
        m2 = np.zeros((u + 1, d + V), np.float32)
        m2[:u, :d], m2[:u, d:] = st.key, st.head_k
        m2[u, :d], m2[u, d:] = st.query_b, st.head_b
        self.m1, self.m2 = m1, m2
        self.rec_out = np.zeros(g + u + 1, np.float32)  # [h U + a W_a (next step) | o | 1]
        self.rec_out[-1] = 1.0
        self.key_logits = np.zeros(d + V, np.float32)
        self.products = (product(self.ha, m1, self.rec_out[:g + u]), product(self.rec_out[g:], m2, self.key_logits))
        self.mem = np.zeros((N, u + 1), np.float32)  # slots, each with a 1 after it: e @ mem = [Σ e m, Σ e]
        self.mem[:, u] = 1.0
        self.a_sum = np.zeros(u + 1, np.float32)
        self.keys = np.tile(st.query_b, (N, 1)).astype(np.float32)  # an all-zero slot's key: 0, plus q_b
        self.exp_safe = float(np.abs(st.v).sum()) < 60.0
        self.t = 0
        self.step = self._make_step()

    def _make_step(self):
        st, V = self.stepper, self.vocab_size
        u, N = st.units, st.N
        g = 4 * u
        t_prev, ctx_proj, length = list(st.t_prev), list(st.ctx_proj), st._grid_len  # row views, made once
        z, update, ha = self.lstm.z, self.lstm.update, self.ha
        h, a = ha[:u], ha[u:2 * u]
        rec_out, key_logits = self.rec_out, self.key_logits
        rec, o = rec_out[:g], rec_out[g:g + u]
        d = key_logits.size - V
        key, logits = key_logits[:d], key_logits[d:]
        mem, keys, query, v, a_sum = self.mem, self.keys, st.query, st.v, self.a_sum
        a_raw = a_sum[:u]
        q = np.empty(d, np.float32)
        kq = np.empty_like(keys)
        e = np.empty(N, np.float32)
        exp_safe = self.exp_safe
        mem_rows, key_rows = [row[:u] for row in mem], list(keys)  # slot views, made once
        add, dot, tanh, exp, mul, copyto = np.add, np.dot, np.tanh, np.exp, np.multiply, np.copyto
        product1, product2 = self.products
        runner = self

        def step(token: int) -> np.ndarray:
            t = runner.t
            if t >= length:  # past the grid: grow it and continue with the new context rows
                if st._grid_len <= t:
                    st._grow(t + 1)
                runner.step = runner._make_step()
                return runner.step(token)
            add(rec, t_prev[token if token >= 0 else V], z)
            add(z, ctx_proj[t], z)
            update()  # h
            dot(h, query, q)
            add(keys, q, kq)
            tanh(kq, kq)
            dot(kq, v, e)  # the scores of the N memory slots
            if exp_safe:
                exp(e, e)
            else:
                exp(e - e.max(), e)
            dot(e, mem, a_sum)
            mul(a_raw, 1.0 / a_sum[u], a)  # the attention vector: the softmax's normalisation
            product1()  # [h, a, 1] @ m1: the next step's recurrent input and this step's output o
            slot = t % N
            copyto(mem_rows[slot], o)
            product2()  # [o, 1] @ m2: o's key and the logits
            copyto(key_rows[slot], key)
            runner.t = t + 1
            return logits

        return step


def make_stepper(weights, model_cfg, settings, vocab_size, *, time_signature=(4, 4), spq=4):
    return AttentionStepper(weights, model_cfg, settings, vocab_size, time_signature=time_signature, spq=spq)


ARCH = register(Arch("attention", "Magenta's Attention RNN: the cell output attends over the last N outputs; bar "
                     "position and metre as inputs", AttentionSettings, "app.music.archs.attention",
                     "app.music.archs.attention_keras", metre_input=True))

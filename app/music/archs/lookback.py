"""`lookback`: Magenta's Lookback RNN in the document's loop, with the piece's own metre as an input.

Step t (predicting token s[t]; see features.py for the exact features and label rule) reads
    [ one-hot s[t-1] (V) | for each lookback L: one-hot of the token L bars before step t (V each) |
      binary counter of the bar position (counter_bits, ±1) | one-hot metre class (len(metres) + 1) |
      optional tune classes (one-hot per kind: rhythm style, scale, tonic) | for each L: whether s[t-1] repeated
      the token L bars before it (1/0) ]
through one shared LSTM cell and one densor with V + n outputs: the V tokens and n "repeat the token from
lookbacks[i] bars ago" labels. The labels are resolved into tokens (`features.fold_repeats`: each repeat label's
probability is added to the token it points at), so the stepper returns token logits and everything downstream
(sampling, beam search, key/range masks: a masked token takes its repeat labels' mass with it) is unchanged.
Training minimises the cross-entropy of Magenta's labels; held-out NLL is reported on the resolved tokens (the
probability of the actual token, comparable with `basic`).

Lookback distances are in bars of the piece's metre (`lookbacks`, default (1, 2) as Magenta; (1, 2, 4, 8) reaches
the 4- and 8-bar repeats of AABB tunes). `tune_classes` (default none) adds per-tune classes computed from the
tune's own notes (features.py: rhythm style, scale, tonic), so the style a tune starts in is an input rather than a
guess the LSTM has to make from the first notes and keep; generation draws them from the training tunes'
frequencies.
The numpy stepper here runs without TensorFlow; lookback_keras.py holds the trainer and the document-style
inference model, proven equal to it by tests/test_music_archs.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.core.config import check_range
from app.core.sampling import softmax
from app.errors import DataError, ModelFolderError, OptionError
from app.music.archs.base import Arch, register
from app.music.archs.features import (DEFAULT_METRES, GRID_START, MetreContext, check_tune_kinds, lookback_index,
                                      lookback_labels, lookback_tokens, parse_time_signature, repeat_flags,
                                      tune_classes)
from app.music.archs.numpy_cell import NumpyLSTM


@dataclass(frozen=True)
class LookbackSettings:
    lookbacks: tuple[int, ...] = field(default=(1, 2), metadata={
        "help": "lookback distances in bars, comma-separated (default 1,2 as Magenta; try 1,2,4,8)"})
    counter_bits: int = field(default=5, metadata={"help": "bits of the bar-position counter (default 5: 32 steps)"})
    metres: tuple[str, ...] = field(default=DEFAULT_METRES, metadata={
        "help": "time signatures with their own metre input, comma-separated; others share one 'other' input"})
    tune_classes: tuple[str, ...] = field(default=(), metadata={
        "help": "per-tune class inputs computed from each tune's notes, comma-separated: rhythm (4 styles by the "
                "share of sixteenths and dotted notes), scale (12 key signatures), tonic (12: where the tonal "
                "centre sits in the scale: major, minor, dorian ...); default none"})

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookbacks", tuple(int(v) for v in self.lookbacks))
        object.__setattr__(self, "metres", tuple(str(m) for m in self.metres))
        object.__setattr__(self, "tune_classes", check_tune_kinds(self.tune_classes))
        if not 1 <= len(self.lookbacks) <= 8 or len(set(self.lookbacks)) != len(self.lookbacks):
            raise OptionError(f"lookbacks must be 1 to 8 different bar distances, got {self.lookbacks}")
        for L in self.lookbacks:
            check_range("lookback distance (bars)", L, 1, 64)
        if list(self.lookbacks) != sorted(self.lookbacks):
            raise OptionError(f"lookbacks must be in increasing order (nearest first), got {self.lookbacks}")
        check_range("counter_bits", self.counter_bits, 1, 12)
        for m in self.metres:
            parse_time_signature(m)

    def context(self, spq: int) -> MetreContext:
        return MetreContext(self.counter_bits, self.metres, spq, self.tune_classes)


def input_size(settings: LookbackSettings, vocab_size: int, spq: int = 4) -> int:
    n = len(settings.lookbacks)
    return vocab_size * (1 + n) + settings.context(spq).size + n


# --- training data ----------------------------------------------------------------------------------------------
def piece_arrays(piece: np.ndarray, changes, settings: LookbackSettings, vocab_size: int, spq: int):
    """One piece -> (ids (T,), lookback ids (T, n), context (T, C + n) int8, labels (T,)) for T = len(piece)."""
    s = np.asarray(piece, np.int64)
    ctx = settings.context(spq)
    bar, pos, cls = ctx.grid(len(s), changes)
    idx = lookback_index(bar, pos, settings.lookbacks)
    x = np.concatenate([[-1], s[:-1]])
    tune = tune_classes(s, settings.tune_classes, spq)
    context = np.concatenate([ctx.rows(pos, cls, tune), repeat_flags(s, idx)], axis=1).astype(np.int8)
    return x, lookback_tokens(s, idx), context, lookback_labels(s, idx, vocab_size)


def training_arrays(pieces: Sequence[np.ndarray], metres, settings: LookbackSettings, vocab_size: int, spq: int,
                    tx: int):
    """Pieces (and their metre changes) -> ({"ids", "lookback_ids", "context"}, labels, weights) in chunks of
    `tx` steps (stride tx; the last chunk of a piece padded with weight 0), as app.music.train.sequence_chunks."""
    from app.music.train import MAX_TX

    if not 1 <= tx <= MAX_TX:
        raise OptionError(f"--tx must be 1..{MAX_TX} steps, got {tx}")
    n = len(settings.lookbacks)
    cols = settings.context(spq).size + n
    parts: dict[str, list] = {"ids": [], "lookback_ids": [], "context": [], "y": [], "w": []}
    for p, changes in zip(pieces, metres):
        if len(p) == 0:
            continue
        x, lb, c, y = piece_arrays(p, changes, settings, vocab_size, spq)
        T = len(x)
        m = math.ceil(T / tx) * tx
        pad = m - T
        parts["ids"].append(np.pad(x, (0, pad)).reshape(-1, tx).astype(np.int32))
        parts["lookback_ids"].append(np.pad(lb, ((0, pad), (0, 0)), constant_values=-1).reshape(-1, tx, n)
                                     .astype(np.int32))
        parts["context"].append(np.pad(c, ((0, pad), (0, 0))).reshape(-1, tx, cols))
        parts["y"].append(np.pad(y, (0, pad)).reshape(-1, tx).astype(np.int32))
        parts["w"].append(np.pad(np.ones(T, np.float32), (0, pad)).reshape(-1, tx))
    if not parts["ids"]:
        raise DataError("no training data: every piece is empty")
    cat = {k: np.concatenate(v) for k, v in parts.items()}
    return {k: cat[k] for k in ("ids", "lookback_ids", "context")}, cat["y"], cat["w"]


# --- numpy stepper ----------------------------------------------------------------------------------------------
class LookbackStepper:
    """The fast path: token ids in, token logits out (labels resolved), without TensorFlow.

    State: (h, c, history (batch, capacity) of the tokens fed so far, t = steps taken). `step` writes its input
    token into the state's history, so a state is used once (beam search's `select` copies the rows it keeps).
    Generation uses one metre and one set of tune classes for the whole batch (`time_signature`, `set_tune`);
    `run` (teacher-forced, e.g. held-out NLL) takes a metre and tune classes per row.
    """

    def __init__(self, weights: dict, model_cfg, settings: LookbackSettings, vocab_size: int, *,
                 time_signature=(4, 4), spq: int = 4):
        if model_cfg.cell != "lstm" or model_cfg.layers != 1:
            raise ModelFolderError("the lookback arch has one LSTM layer; the config says "
                                   f"cell={model_cfg.cell}, layers={model_cfg.layers}")
        self.settings, self.vocab_size, self.spq = settings, vocab_size, spq
        self.ctx = settings.context(spq)
        self.n = len(settings.lookbacks)
        V, n = vocab_size, self.n
        try:
            k, r, b = weights["rnn_0/kernel"], weights["rnn_0/recurrent_kernel"], weights["rnn_0/bias"]
            self.head_k = np.asarray(weights["head/kernel"], np.float32)
            self.head_b = np.asarray(weights["head/bias"], np.float32)
        except KeyError as exc:
            raise ModelFolderError(f"weights are missing array {exc}; the model folder is incomplete") from None
        if k.shape[0] != input_size(settings, V, spq) or self.head_k.shape[1] != V + n:
            raise ModelFolderError(f"lookback weights (input {k.shape[0]}, output {self.head_k.shape[1]}) do not "
                                   f"match vocabulary {V} with settings {settings}")
        self.cell = NumpyLSTM(k, r, b)
        K = self.cell.kernel
        zero = np.zeros((1, K.shape[1]), np.float32)
        self.t_prev = np.vstack([K[:V] + self.cell.bias, self.cell.bias[None]])  # row V: the zero input (id -1)
        self.t_lb = [np.vstack([K[V * (1 + i):V * (2 + i)], zero]) for i in range(n)]
        c0 = V * (1 + n)
        self.w_ctx = K[c0:c0 + self.ctx.size]
        self.w_flag = K[c0 + self.ctx.size:]
        self.tune = () if not self.ctx.tune else None  # a tune-conditioned model needs set_tune before it steps
        self.set_metre(time_signature)

    def tune_of(self, piece: np.ndarray) -> tuple[int, ...]:
        """The tune classes of a whole piece (token ids), as training computed them."""
        return tune_classes(piece, self.ctx.tune, self.spq)

    def set_tune(self, classes) -> None:
        """The tune classes (one per kind of settings.tune_classes) of the melodies this stepper generates."""
        self.ctx.tune_onehot(classes)  # checks count and ranges
        self.tune = tuple(int(c) for c in classes)
        self._grid_len = 0
        self._grow(GRID_START)

    def _tune_row(self) -> tuple[int, ...]:
        if self.tune is None:
            raise OptionError(f"this model is conditioned on tune classes ({', '.join(self.ctx.tune)}); choose them "
                              f"with set_tune (MelodyGenerator draws them from the training tunes)")
        return self.tune

    def set_metre(self, time_signature) -> None:
        num, den = parse_time_signature(time_signature)
        self.time_signature = (num, den)
        self._grid_len = 0
        self._grow(GRID_START)

    def _grow(self, length: int) -> None:
        length = max(length, 2 * self._grid_len)
        bar, pos, cls = self.ctx.grid(length, [(0, *self.time_signature)])
        self.lb_index = lookback_index(bar, pos, self.settings.lookbacks)
        tune = self.tune if self.tune is not None else (0,) * len(self.ctx.tune)  # checked by zero_state
        self.ctx_proj = self.ctx.rows(pos, cls, tune) @ self.w_ctx  # (length, 4u)
        self._grid_len = length
        self._runner_tables = None  # built by the first runner() on this grid

    def runner(self) -> "LookbackRunner":
        """A batch-1 runner (app.core.runner) over this stepper's metre and tune classes; kind "probs"."""
        self._tune_row()
        return LookbackRunner(self)

    def runner_tables(self):
        """(rows, index lists) shared by this stepper's runners until the grid grows: see LookbackRunner."""
        if self._runner_tables is None:
            self._runner_tables = _runner_tables(self)
        return self._runner_tables

    def zero_state(self, batch: int):
        self._tune_row()  # every generation starts here: a tune-conditioned model needs its classes first
        u = self.cell.units
        z = np.zeros((batch, u), np.float32)
        return (z, z.copy(), np.full((batch, 256), -1, np.int64), 0)

    def select(self, state, keep):
        h, c, hist, t = state
        return (h[keep], c[keep], hist[keep], t)

    def _labels_to_tokens(self, label_logits: np.ndarray, lb_tok: np.ndarray) -> np.ndarray:
        V = self.vocab_size
        p = softmax(label_logits)
        tok = p[:, :V].copy()
        rows = np.arange(len(tok))
        for i in range(self.n):
            ok = lb_tok[:, i] >= 0
            tok[rows[ok], lb_tok[ok, i]] += p[ok, V + i]
        tok /= tok.sum(axis=1, keepdims=True)
        return np.log(np.maximum(tok, 1e-30)).astype(np.float32)

    def _zx(self, prev, lb_tok, ctx_proj, flags):
        V = self.vocab_size
        zx = self.t_prev[np.where(prev < 0, V, prev)]
        for i in range(self.n):
            zx += self.t_lb[i][np.where(lb_tok[:, i] < 0, V, lb_tok[:, i])]
        zx += ctx_proj
        if self.n:
            zx += flags @ self.w_flag
        return zx

    def step_labels(self, ids, state):
        """ids (batch,) -> (label logits (batch, V + n), lookback tokens (batch, n), new state)."""
        h, c, hist, t = state
        ids = np.asarray(ids, np.int64)
        if t + 1 >= self._grid_len:
            self._grow(t + 2)
        if t >= 1:
            if t > hist.shape[1]:
                hist = np.concatenate([hist, np.full((len(hist), hist.shape[1]), -1, np.int64)], axis=1)
            hist[:, t - 1] = ids
        rows_idx = self.lb_index[t]
        lb_tok = np.stack([hist[:, j] if j >= 0 else np.full(len(ids), -1) for j in rows_idx], axis=1) \
            if self.n else np.zeros((len(ids), 0), np.int64)
        flags = np.zeros((len(ids), self.n), np.float32)
        if t >= 1:
            for i, j in enumerate(self.lb_index[t - 1]):
                if j >= 0:
                    flags[:, i] = hist[:, j] == ids
        zx = self._zx(ids, lb_tok, self.ctx_proj[t], flags)
        h, c = self.cell.step(zx, h, c)
        logits = h @ self.head_k
        logits += self.head_b
        return logits, lb_tok, (h, c, hist, t + 1)

    def step(self, ids, state):
        """ids (batch,) -> (token logits (batch, V), new state)."""
        logits, lb_tok, state = self.step_labels(ids, state)
        return self._labels_to_tokens(logits, lb_tok), state

    def run_labels(self, ids: np.ndarray, metres=None, tunes=None) -> tuple[np.ndarray, np.ndarray]:
        """Teacher-forced: ids (batch, T) inputs (x0 = -1 first) -> (label logits (batch, T, V + n), lookback
        tokens (batch, T, n)). metres: one list of (step, num, den) changes per row (default: the stepper's);
        tunes: tune classes per row (default: the stepper's, `set_tune`; `tune_of` gives a whole piece's)."""
        ids = np.asarray(ids, np.int64)
        b, T = ids.shape
        metres = metres if metres is not None else [[(0, *self.time_signature)]] * b
        tunes = tunes if tunes is not None else [self._tune_row()] * b
        if len(metres) != b or len(tunes) != b:
            raise OptionError(f"{len(metres)} metres and {len(tunes)} tune classes for {b} rows")
        # the target tokens s[t] = ids[t + 1] (the last target is unknown and is only needed as a lookback
        # source for later steps, which do not exist)
        s = np.concatenate([ids[:, 1:], np.full((b, 1), -1)], axis=1)
        lb_tok = np.empty((b, T, self.n), np.int64)
        zx_ctx = np.empty((b, T, self.ctx_proj.shape[1]), np.float32)
        flags = np.empty((b, T, self.n), np.float32)
        for r in range(b):
            bar, pos, cls = self.ctx.grid(T, metres[r])
            idx = lookback_index(bar, pos, self.settings.lookbacks)
            lb_tok[r] = lookback_tokens(s[r], idx)
            flags[r] = repeat_flags(s[r], idx)
            zx_ctx[r] = self.ctx.rows(pos, cls, tunes[r]) @ self.w_ctx
        h = np.zeros((b, self.cell.units), np.float32)
        c = h.copy()
        out = np.empty((b, T, self.vocab_size + self.n), np.float32)
        for t in range(T):
            zx = self._zx(ids[:, t], lb_tok[:, t], zx_ctx[:, t], flags[:, t])
            h, c = self.cell.step(zx, h, c)
            out[:, t] = h @ self.head_k + self.head_b
        return out, lb_tok

    def run(self, ids: np.ndarray, metres=None, tunes=None) -> np.ndarray:
        """Teacher-forced token logits (batch, T, V) (labels resolved); see run_labels."""
        logits, lb_tok = self.run_labels(ids, metres, tunes)
        b, T, _ = logits.shape
        tok = self._labels_to_tokens(logits.reshape(b * T, -1), lb_tok.reshape(b * T, -1))
        return tok.reshape(b, T, self.vocab_size)


def weight_shapes(model_cfg, settings: LookbackSettings, vocab_size: int, spq: int = 4) -> dict[str, tuple]:
    """The arrays of weights.npz and their shapes: one LSTM on the lookback input, a head of V + n labels."""
    u, n = model_cfg.units, len(settings.lookbacks)
    return {"rnn_0/kernel": (input_size(settings, vocab_size, spq), 4 * u), "rnn_0/recurrent_kernel": (u, 4 * u),
            "rnn_0/bias": (4 * u,), "head/kernel": (u, vocab_size + n), "head/bias": (vocab_size + n,)}


# --- batch-1 runner ----------------------------------------------------------------------------------------------
HIST_OFFSET = 1  # the runner's history list is [-2, s[0], s[1], ...]: s[j] sits at j + 1
FLAG_GROUP = 4  # repeat flags summed in groups of 4: one table row per combination (16 rows a group)


def _runner_tables(st: LookbackStepper) -> dict:
    """What the runner adds up each step, precomputed for the stepper's grid (T = st._grid_len steps, one metre):

    rows   (R, 4u) float32 input projections: [0, V] the previous token (LSTM bias included; row V: the zero input
           x0); base[i] + [0, V) the token lookbacks[i] bars back; ctx_flags + pos * 16 + m the context row of bar
           position pos plus the repeat flags 0..3 whose bits are set in m; extra[k] + m the same for flags
           4k..4k+3 (when there are more than four)
    look   per step t: ((i, base[i], history position), ...) for the lookbacks of t that exist
    flags  per step t: ((1 << i, history position), ...) for the lookbacks of t - 1 that exist (the repeat flags
           compare the previous token with those)
    ctx    per step t: the row of its bar position with no flags set
    A missing lookback adds nothing (its row would be zeros) and its repeat label is dropped."""
    V, n, T, g = st.vocab_size, st.n, st._grid_len, st.cell.kernel.shape[1]
    bar, pos, cls = st.ctx.grid(T, [(0, *st.time_signature)])
    periods, first = np.unique(pos, return_index=True)  # one metre: the context row depends on pos only
    groups = [list(range(k, min(k + FLAG_GROUP, n))) for k in range(0, n, FLAG_GROUP)] or [[]]
    combos = [np.zeros((2 ** len(grp), g), np.float32) for grp in groups]
    for grp, table in zip(groups, combos):
        for m in range(len(table)):
            for bit, i in enumerate(grp):
                if m >> bit & 1:
                    table[m] += st.w_flag[i]
    base = [(V + 1) + V * i for i in range(n)]
    ctx_flags = (V + 1) + V * n
    width0 = len(combos[0])
    ctx_rows = st.ctx_proj[first]  # (positions, 4u)
    extra, start = [], ctx_flags + len(periods) * width0
    for table in combos[1:]:
        extra.append(start)
        start += len(table)
    rows = np.empty((start, g), np.float32)
    rows[:V + 1] = st.t_prev
    for i in range(n):
        rows[base[i]:base[i] + V] = st.t_lb[i][:V]
    rows[ctx_flags:ctx_flags + len(periods) * width0] = (ctx_rows[:, None, :] + combos[0][None]).reshape(-1, g)
    for at, table in zip(extra, combos[1:]):
        rows[at:at + len(table)] = table
    where = {p: k for k, p in enumerate(periods.tolist())}
    idx = st.lb_index
    look, flags = [], []
    for t, r in enumerate(idx.tolist()):
        look.append(tuple((i, base[i], j + HIST_OFFSET) for i, j in enumerate(r) if j >= 0))
        prev = idx[t - 1].tolist() if t else []
        flags.append(tuple((1 << i, j + HIST_OFFSET) for i, j in enumerate(prev) if j >= 0))
    ctx = [ctx_flags + where[p] * width0 for p in pos.tolist()]
    return {"rows": rows, "views": list(rows), "look": look, "flags": flags, "ctx": ctx, "extra": extra,
            "length": T}


class LookbackRunner:
    """The lookback model at batch 1 (app.core.runner protocol): returns unnormalised token probabilities (V,).

    Per step: z = h U (from the previous step's product) plus a few precomputed rows (`_runner_tables`: the previous
    token's, one per existing lookback token, and the bar position's with the repeat flags folded in), one add each;
    LSTM1's update; one product [h, 1] @ [[U | head], [0 | head bias]]; exp of the V + n label logits (without the max
    shift when the head cannot make a logit above 60); each repeat label's mass added to the token it points at."""

    kind = "probs"

    def __init__(self, stepper: LookbackStepper):
        from app.core.runner import LSTM1, fused, logit_bound, product

        self.stepper = st = stepper
        self.vocab_size = V = st.vocab_size
        u, n = st.cell.units, st.n
        self.hx = np.zeros(u + 1, np.float32)
        self.hx[u] = 1.0
        self.lstm = LSTM1(u, self.hx[:u])
        self.mat = fused(st.cell.recurrent, st.head_k, st.head_b)  # (u + 1, 4u + V + n)
        self.out = np.zeros(4 * u + V + n, np.float32)  # [h U for the next step | label logits]
        self.mat_product = product(self.hx, self.mat, self.out)
        self.exp_safe = logit_bound(st.head_k, st.head_b) < 60.0
        self.hist = [-2]
        self.t = 0
        self.step = self._make_step()

    def _make_step(self):
        st, V = self.stepper, self.vocab_size
        tables = st.runner_tables()
        rows, look, flags, ctx, extra = (tables[k] for k in ("views", "look", "flags", "ctx", "extra"))
        length, mask0 = tables["length"], 2 ** FLAG_GROUP - 1
        z, update, mat_product, out = self.lstm.z, self.lstm.update, self.mat_product, self.out
        g = z.size
        rec, label_logits = out[:g], out[g:]
        e = np.empty(label_logits.size, np.float32)  # exp of the label logits; the repeat labels fold into e[:V]
        probs = e[:V]
        hist, exp_safe = self.hist, self.exp_safe
        extra_groups = [(FLAG_GROUP * (k + 1), at) for k, at in enumerate(extra)]
        add, exp = np.add, np.exp
        runner = self

        def step(token: int) -> np.ndarray:
            t = runner.t
            if t >= length:  # past the grid: grow it (once for all runners) and continue with the new tables
                if st._grid_len <= t:
                    st._grow(t + 1)
                runner.step = runner._make_step()
                return runner.step(token)
            if t:
                if token < 0:
                    raise ValueError("only the first input may be the zero input (-1)")
                hist.append(token)
            fl = 0
            for bit, j in flags[t]:
                if token == hist[j]:
                    fl |= bit
            add(rec, rows[token if token >= 0 else V], z)
            add(z, rows[ctx[t] + (fl & mask0)], z)
            for shift, at in extra_groups:
                add(z, rows[at + (fl >> shift & mask0)], z)
            lbt = look[t]
            for i, b, j in lbt:
                add(z, rows[b + hist[j]], z)
            update()
            mat_product()  # [h, 1] @ [[U | head], [0 | bias]]: the next step's h U and this step's label logits
            if exp_safe:
                exp(label_logits, e)
            else:
                exp(label_logits - label_logits.max(), e)
            for i, b, j in lbt:
                e[hist[j]] += e[V + i]
            runner.t = t + 1
            return probs

        return step


def make_stepper(weights, model_cfg, settings, vocab_size, *, time_signature=(4, 4), spq=4):
    return LookbackStepper(weights, model_cfg, settings, vocab_size, time_signature=time_signature, spq=spq)


ARCH = register(Arch("lookback", "Magenta's Lookback RNN: the events 1, 2 ... bars back, repeat labels, bar "
                     "position and metre as inputs", LookbackSettings, "app.music.archs.lookback",
                     "app.music.archs.lookback_keras", metre_input=True))

"""Keras side of `attention`: the cell as a registered layer, its whole-sequence trainer (keras.layers.RNN) and
the document-style inference model (the same cell called step by step, the chosen token fed back)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from app.music.archs.attention import WEIGHT_KEYS, AttentionSettings, input_size
from app.music.archs.layers import ZerosLike
from app.core.model import OneHot
from app.music.models import DENSOR_NAME, OneHotArgmax, TimeSlice


@keras.saving.register_keras_serializable(package="app_music_archs")
class AttentionLSTMCell(keras.layers.Layer):
    """LSTM with attention over its last `attn_length` outputs (equations in app/music/archs/attention.py).

    call(x (b, F), states [h (b, u), c (b, u), a (b, u), memory (b, N * u)]) -> (o (b, u), new states); the memory
    holds slots oldest first and shifts by one each step. LSTM weights in Keras layout (gates i, f, g, o)."""

    def __init__(self, units: int, attn_length: int, attn_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.units, self.attn_length, self.attn_dim = int(units), int(attn_length), int(attn_dim)
        u, N = self.units, self.attn_length
        self.state_size = [u, u, u, N * u]
        self.output_size = u

    def build(self, input_shape):
        F, u, d = int(input_shape[-1]), self.units, self.attn_dim
        self.kernel = self.add_weight(shape=(F + u, 4 * u), initializer="glorot_uniform", name="kernel")
        self.recurrent_kernel = self.add_weight(shape=(u, 4 * u), initializer="orthogonal", name="recurrent_kernel")
        self.bias = self.add_weight(shape=(4 * u,), initializer=_lstm_bias(u), name="bias")
        self.key = self.add_weight(shape=(u, d), initializer="glorot_uniform", name="key")
        self.query = self.add_weight(shape=(u, d), initializer="glorot_uniform", name="query")
        self.query_bias = self.add_weight(shape=(d,), initializer="zeros", name="query_bias")
        self.v = self.add_weight(shape=(d,), initializer="random_normal", name="v")
        self.out_kernel = self.add_weight(shape=(2 * u, u), initializer="glorot_uniform", name="out_kernel")
        self.out_bias = self.add_weight(shape=(u,), initializer="zeros", name="out_bias")

    def call(self, x, states):
        h, c, a, mem = states
        u, N = self.units, self.attn_length
        z = ops.matmul(ops.concatenate([x, a], axis=-1), self.kernel) + ops.matmul(h, self.recurrent_kernel) \
            + self.bias
        i, f, g, o = z[:, :u], z[:, u:2 * u], z[:, 2 * u:3 * u], z[:, 3 * u:]
        c = ops.sigmoid(f) * c + ops.sigmoid(i) * ops.tanh(g)
        h = ops.sigmoid(o) * ops.tanh(c)
        m = ops.reshape(mem, (-1, N, u))
        keys = ops.matmul(m, self.key)  # (b, N, d)
        e = ops.sum(ops.tanh(keys + ops.expand_dims(ops.matmul(h, self.query) + self.query_bias, 1)) * self.v,
                    axis=-1)
        p = ops.softmax(e, axis=-1)
        a = ops.sum(ops.expand_dims(p, -1) * m, axis=1)
        out = ops.matmul(ops.concatenate([h, a], axis=-1), self.out_kernel) + self.out_bias
        mem = ops.concatenate([mem[:, u:], out], axis=-1)
        return out, [h, c, a, mem]

    def get_config(self):
        return {**super().get_config(), "units": self.units, "attn_length": self.attn_length,
                "attn_dim": self.attn_dim}


def _lstm_bias(u):
    """Keras' unit_forget_bias: forget-gate bias 1, the rest 0."""
    return keras.initializers.Constant(np.r_[np.zeros(u), np.ones(u), np.zeros(2 * u)].astype(np.float32))


@keras.saving.register_keras_serializable(package="app_music_archs")
class ConcatCast(keras.layers.Layer):
    """[one-hot (b, T, V), context (b, T, C) int8/float] -> (b, T, V + C) float."""

    def call(self, inputs):
        return ops.concatenate([inputs[0], ops.cast(inputs[1], self.compute_dtype)], axis=-1)

    def compute_output_shape(self, input_shapes):
        return tuple(input_shapes[0][:-1]) + (input_shapes[0][-1] + input_shapes[1][-1],)


def build_trainer(model_cfg, settings: AttentionSettings, vocab_size: int, seed: int = 0, spq: int = 4):
    """Inputs ids (b, T) int32 and context (b, T, C) int8 -> token logits (b, T, V)."""
    keras.utils.set_random_seed(seed)
    C = settings.context(spq).size
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    ctx = keras.Input(shape=(None, C), dtype="int8", name="context")
    x = ConcatCast(name="inputs")([OneHot(vocab_size, name="onehot")(ids), ctx])
    cell = AttentionLSTMCell(model_cfg.units, settings.attn_length, settings.attn_dim, name="attention_cell")
    x = keras.layers.RNN(cell, return_sequences=True, name="rnn_0")(x)
    if model_cfg.dropout > 0:  # training only; no weights, so the exported layers and the numpy stepper are unchanged
        x = keras.layers.Dropout(model_cfg.dropout, name="dropout_0")(x)
    logits = keras.layers.Dense(vocab_size, name="head")(x)
    return keras.Model({"ids": ids, "context": ctx}, logits, name="attention_trainer")


def _cell_weights(cell) -> dict:
    names = ("kernel", "recurrent_kernel", "bias", "key", "query", "query_bias", "v", "out_kernel", "out_bias")
    keys = ("rnn_0/kernel", "rnn_0/recurrent_kernel", "rnn_0/bias", "attn/key", "attn/query", "attn/query_bias",
            "attn/v", "attn/out_kernel", "attn/out_bias")
    return dict(zip(keys, (np.asarray(getattr(cell, n).numpy(), np.float32) for n in names))), names, keys


def export_weights(model, model_cfg) -> dict:
    cell = model.get_layer("rnn_0").cell
    w, _, _ = _cell_weights(cell)
    hk, hb = model.get_layer("head").get_weights()
    w["head/kernel"], w["head/bias"] = np.asarray(hk, np.float32), np.asarray(hb, np.float32)
    assert set(w) == set(WEIGHT_KEYS)
    return w


def _set_cell(cell, weights) -> None:
    _, names, keys = _cell_weights(cell)
    for n, k in zip(names, keys):
        getattr(cell, n).assign(weights[k])


def import_weights(model, model_cfg, weights) -> None:
    _set_cell(model.get_layer("rnn_0").cell, weights)
    model.get_layer("head").set_weights([weights["head/kernel"], weights["head/bias"]])


def inference_model(weights, model_cfg, settings: AttentionSettings, vocab_size: int, Ty: int = 100,
                    time_signature=(4, 4), spq: int = 4) -> keras.Model:
    """The document's loop: inputs [x0 (b, 1, V), a0, c0, context (b, Ty, C)]; each step the shared attention
    cell and densor (softmax over V), the one-hot of the argmax fed back. Attention vector and memory start at 0."""
    V, u, N = vocab_size, model_cfg.units, settings.attn_length
    C = settings.context(spq).size
    cell = AttentionLSTMCell(u, N, settings.attn_dim, name="attention_cell")
    cell.build((None, input_size(settings, V, spq)))
    _set_cell(cell, weights)
    densor = keras.layers.Dense(V, activation="softmax", name=DENSOR_NAME)
    densor.build((None, u))
    densor.set_weights([weights["head/kernel"], weights["head/bias"]])
    x0 = keras.Input(shape=(1, V), name="x0")
    a0 = keras.Input(shape=(u,), name="a0")
    c0 = keras.Input(shape=(u,), name="c0")
    context = keras.Input(shape=(Ty, C), name="context")
    zeros_u = ZerosLike(name="zero_attention")(a0)
    mem = ZeroMemory(N, name="zero_memory")(a0)
    states = [a0, c0, zeros_u, mem]
    x = x0
    outputs = []
    for t in range(Ty):
        row = TimeSlice(t, name=f"context_{t}")(context)
        inp = ConcatCast(name=f"step_input_{t}")([TimeSlice(0, name=f"prev_{t}")(x), row])
        out, states = cell(inp, states)
        probs = densor(out)
        outputs.append(probs)
        x = OneHotArgmax(name=f"one_hot_{t}")(probs)
    return keras.Model(inputs=[x0, a0, c0, context], outputs=outputs, name="attention_inference_model")


@keras.saving.register_keras_serializable(package="app_music_archs")
class ZeroMemory(keras.layers.Layer):
    """h (b, u) -> zeros (b, slots * u): the empty attention memory."""

    def __init__(self, slots: int, **kwargs):
        super().__init__(**kwargs)
        self.slots = int(slots)

    def call(self, h):
        return ops.zeros_like(ops.tile(h, (1, self.slots)))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * self.slots)

    def get_config(self):
        return {**super().get_config(), "slots": self.slots}

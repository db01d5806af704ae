"""Registered Keras layers of the structure-aware archs (keras.ops only, get_config, no Lambda), so their saved
models load with keras.saving.load_model(..., safe_mode=True)."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="app_music_archs")
class LookbackInput(keras.layers.Layer):
    """Whole-sequence input of the lookback trainer: [ids (b, T) int, lookback ids (b, T, n) int (-1 = none),
    context (b, T, C) int8/float] -> (b, T, V * (1 + n) + C) float: one-hots of the previous token and of each
    lookback token (all zeros for -1), then the context columns."""

    def __init__(self, vocab_size: int, n_lookbacks: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.n_lookbacks = int(vocab_size), int(n_lookbacks)

    def call(self, inputs):
        ids, lb, ctx = inputs
        V = self.vocab_size
        prev = ops.one_hot(ops.cast(ids, "int32"), V, dtype=self.compute_dtype)
        parts = [prev]
        for i in range(self.n_lookbacks):
            parts.append(ops.one_hot(ops.cast(lb[..., i], "int32"), V, dtype=self.compute_dtype))
        parts.append(ops.cast(ctx, self.compute_dtype))
        return ops.concatenate(parts, axis=-1)

    def compute_output_shape(self, input_shapes):
        ids, _, ctx = input_shapes
        return tuple(ids) + (self.vocab_size * (1 + self.n_lookbacks) + ctx[-1],)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size, "n_lookbacks": self.n_lookbacks}


@keras.saving.register_keras_serializable(package="app_music_archs")
class LookbackStepInput(keras.layers.Layer):
    """One step of the document-style loop: [prev (b, 1, V), n lookback one-hots (b, 1, V), n one-hots of the
    tokens L bars before the previous step (b, 1, V), context row (b, C0)] -> (b, 1, V (1 + n) + C0 + n):
    prev, lookbacks, context, and the repeat flags sum(prev * before_i) (1 when the previous token repeated)."""

    def __init__(self, n_lookbacks: int, **kwargs):
        super().__init__(**kwargs)
        self.n_lookbacks = int(n_lookbacks)

    def call(self, inputs):
        n = self.n_lookbacks
        prev, lbs, before, ctx = inputs[0], inputs[1:1 + n], inputs[1 + n:1 + 2 * n], inputs[1 + 2 * n]
        flags = [ops.sum(prev * b, axis=-1, keepdims=True) for b in before]
        return ops.concatenate([prev, *lbs, ops.expand_dims(ctx, 1), *flags], axis=-1)

    def compute_output_shape(self, input_shapes):
        n = self.n_lookbacks
        V, C0 = input_shapes[0][-1], input_shapes[1 + 2 * n][-1]
        return (input_shapes[0][0], 1, V * (1 + n) + C0 + n)

    def get_config(self):
        return {**super().get_config(), "n_lookbacks": self.n_lookbacks}


@keras.saving.register_keras_serializable(package="app_music_archs")
class FoldRepeats(keras.layers.Layer):
    """[label probabilities (b, V + n), n lookback one-hots (b, 1, V)] -> token probabilities (b, V): each repeat
    label's probability goes to the token it points at; a lookback of zeros (no such step) drops its label and the
    rest is renormalised (as app.music.archs.features.fold_repeats)."""

    def __init__(self, vocab_size: int, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = int(vocab_size)

    def call(self, inputs):
        probs, lbs = inputs[0], inputs[1:]
        V = self.vocab_size
        tok = probs[:, :V]
        for i, lb in enumerate(lbs):
            tok = tok + probs[:, V + i:V + i + 1] * lb[:, 0, :]
        return tok / ops.sum(tok, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shapes):
        return (input_shapes[0][0], self.vocab_size)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size}


@keras.saving.register_keras_serializable(package="app_music_archs")
class ZerosLike(keras.layers.Layer):
    """x -> zeros of the same shape (the one-hot of a lookback step that does not exist)."""

    def call(self, x):
        return ops.zeros_like(x)

    def compute_output_shape(self, input_shape):
        return input_shape

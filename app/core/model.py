"""The shared Keras sequence model (imports Keras; callers import this module lazily).

`build_model` gives the whole-sequence form used for training: ids (batch, time) -> logits (batch, time, vocab).
`export_weights` flattens it to numpy arrays that `app.core.stepper.NumpyStepper` runs step by step; a test proves
the two give the same probabilities.
"""

from __future__ import annotations

import app.core.tfquiet  # noqa: F401,I001  (before keras: silences TensorFlow start-up lines)
import keras
import numpy as np

from app.core.cells import get_cell
from app.core.modelconfig import ModelConfig


@keras.saving.register_keras_serializable(package="app")
class OneHot(keras.layers.Layer):
    """int ids (...,) -> float one-hot (..., depth); an id of -1 gives all zeros (the course's x0)."""

    def __init__(self, depth: int, **kwargs):
        super().__init__(**kwargs)
        self.depth = int(depth)

    def call(self, ids):
        return keras.ops.one_hot(keras.ops.cast(ids, "int32"), self.depth, dtype=self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.depth,)

    def get_config(self):
        return {**super().get_config(), "depth": self.depth}


def rnn_layer(cfg: ModelConfig, name: str, **kwargs):
    """The Keras layer of the registered cell `cfg.cell` (app.core.cells), `cfg.units` wide."""
    return get_cell(cfg.cell).layer_class()(cfg.units, name=name, **kwargs)


def build_model(cfg: ModelConfig, vocab_size: int, seed: int = 0) -> keras.Model:
    """Whole-sequence model: Input ids (batch, time) -> logits (batch, time, vocab_size)."""
    keras.utils.set_random_seed(seed)
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    if cfg.input == "onehot":
        x = OneHot(vocab_size, name="onehot")(ids)
    else:
        x = keras.layers.Embedding(vocab_size, cfg.embed_dim, name="embed")(ids)
    for i in range(cfg.layers):
        x = rnn_layer(cfg, f"rnn_{i}", return_sequences=True, recurrent_dropout=cfg.recurrent_dropout)(x)
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")(x)
    logits = keras.layers.Dense(vocab_size, name="head")(x)
    return keras.Model(ids, logits, name="sequence_model")


def export_weights(model: keras.Model, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Keras model -> {"embed", "rnn_i/kernel", "rnn_i/recurrent_kernel", "rnn_i/bias", "head/kernel", "head/bias"}.

    Keras gate order is kept (LSTM (i, f, c, o); GRU (z, r, h) with reset_after=True and bias shape (2, 3*units));
    the registered cells' `prepare` turns them into the stepper's layout.
    """
    out: dict[str, np.ndarray] = {}
    if cfg.input == "embedding":
        out["embed"] = model.get_layer("embed").get_weights()[0]
    for i in range(cfg.layers):
        k, r, b = model.get_layer(f"rnn_{i}").get_weights()
        out[f"rnn_{i}/kernel"], out[f"rnn_{i}/recurrent_kernel"], out[f"rnn_{i}/bias"] = k, r, b
    out["head/kernel"], out["head/bias"] = model.get_layer("head").get_weights()
    return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def import_weights(model: keras.Model, cfg: ModelConfig, weights: dict[str, np.ndarray]) -> None:
    """Inverse of export_weights (used to resume or fine-tune from a model folder)."""
    if cfg.input == "embedding":
        model.get_layer("embed").set_weights([weights["embed"]])
    for i in range(cfg.layers):
        model.get_layer(f"rnn_{i}").set_weights(
            [weights[f"rnn_{i}/kernel"], weights[f"rnn_{i}/recurrent_kernel"], weights[f"rnn_{i}/bias"]])
    model.get_layer("head").set_weights([weights["head/kernel"], weights["head/bias"]])

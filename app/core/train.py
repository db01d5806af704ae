"""Training the shared sequence model with `model.fit` on `tf.data` (imports TensorFlow; import lazily).

Data are (X ids (batch, time), Y ids (batch, time), W weights (batch, time)); W is 0 on padding so padding never
counts in the loss. Loss: sparse categorical cross-entropy on logits, in nats per token.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import app.core.tfquiet  # noqa: F401,I001  (before keras: silences TensorFlow start-up lines)
import keras
import numpy as np
import tensorflow as tf

from app.core.modelconfig import TrainConfig

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray]


class ProgressBar(keras.callbacks.Callback):
    """A tqdm bar per epoch counting its batches (so the first feedback comes after one batch, not one epoch),
    showing the running loss and, at the end of the epoch, the validation loss (nats/token)."""

    def __init__(self, total_epochs: int, steps_per_epoch: int, enabled: bool = True):
        super().__init__()
        self.total, self.steps, self.enabled, self.bar = total_epochs, steps_per_epoch, enabled, None

    def on_epoch_begin(self, epoch, logs=None):
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=self.steps, unit="batch", desc=f"epoch {epoch + 1}/{self.total}", leave=True)

    def on_train_batch_end(self, batch, logs=None):
        if self.bar is not None:
            if batch % 10 == 0:
                self.bar.set_postfix(loss=f"{(logs or {}).get('loss', float('nan')):.4f}", refresh=False)
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar is not None:
            logs = logs or {}
            self.bar.set_postfix(loss=f"{logs.get('loss', float('nan')):.4f}",
                                 val=f"{logs.get('val_loss', float('nan')):.4f}")
            self.bar.close()
            self.bar = None


class TimeLimit(keras.callbacks.Callback):
    """Stops training after the epoch during which `minutes` of training have passed (0 = never)."""

    def __init__(self, minutes: float):
        super().__init__()
        self.seconds, self.t0, self.stopped_epoch = 60.0 * minutes, None, None

    def on_train_begin(self, logs=None):
        import time

        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        import time

        if self.seconds > 0 and time.perf_counter() - self.t0 >= self.seconds:
            self.stopped_epoch = epoch + 1
            self.model.stop_training = True


class EpochHook(keras.callbacks.Callback):
    """Calls fn(epoch, logs) after each epoch (e.g. to save a resumable checkpoint or report progress)."""

    def __init__(self, fn: Callable[[int, dict], None]):
        super().__init__()
        self.fn = fn

    def on_epoch_end(self, epoch, logs=None):
        self.fn(epoch, dict(logs or {}))


def make_dataset(data: Arrays, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    x, y, w = data  # x: ids (n, time), or a dict of input arrays (n, ...) for a model with named inputs
    x = dict(x) if isinstance(x, dict) else x.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32), w.astype(np.float32)))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    # Keras averages the weighted loss over all (batch x time) cells, padding included; rescaling W so it averages
    # to 1 in each batch makes the reported loss the mean NLL per real token (nats/token), as users expect.
    ds = ds.batch(batch_size).map(lambda x, y, w: (x, y, w / tf.maximum(tf.reduce_mean(w), 1e-9)))
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_model(model: keras.Model, tcfg: TrainConfig, steps_per_epoch: int) -> None:
    lr = tcfg.learning_rate
    if tcfg.lr_decay < 1.0:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=max(1, steps_per_epoch),
                                                         decay_rate=tcfg.lr_decay, staircase=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, clipnorm=tcfg.clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[])


def fit(model: keras.Model, train: Arrays, val: Arrays, tcfg: TrainConfig, *, log_dir: str | Path | None = None,
        initial_epoch: int = 0, progress: bool = True, hooks: list[keras.callbacks.Callback] = ()) -> dict:
    """Train with early stopping on val_loss (best epoch restored). Returns the history dict (nats/token)."""
    steps = math.ceil(len(train[1]) / tcfg.batch_size)
    compile_model(model, tcfg, steps)
    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=tcfg.patience, restore_best_weights=True),
        ProgressBar(tcfg.epochs, steps, progress),
        TimeLimit(tcfg.time_limit_min),
        *hooks,
    ]
    if log_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False))
    hist = model.fit(make_dataset(train, tcfg.batch_size, True, tcfg.seed),
                     validation_data=make_dataset(val, 1024, False, 0), epochs=tcfg.epochs,
                     initial_epoch=initial_epoch, callbacks=callbacks, verbose=0, shuffle=False)
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}

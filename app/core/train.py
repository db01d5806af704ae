"""Training the shared sequence model with `model.fit` on `tf.data` (imports TensorFlow; import lazily).

Data are (X ids (batch, time), Y ids (batch, time), W weights (batch, time)); W is 0 on padding so padding never
counts in the loss. Loss: sparse categorical cross-entropy on logits, in nats per token.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Callable, Sequence

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


def per_token_weights(x, y, w):
    """Rescale one global batch's weights W so they average to 1 over its (batch x time) cells.

    Keras averages the weighted loss over all cells, padding included; with W / mean(W) the loss is the mean NLL
    per real token (nats/token). Applied to the global batch before `tf.distribute` splits it, each replica's
    "sum over its cells / replicas" adds up to sum(nll * W) / (real tokens of the global batch): the exact
    per-token mean over the global batch, padding never counted, whatever the replica count.
    """
    return x, y, w / tf.maximum(tf.reduce_mean(w), 1e-9)


def make_dataset(data: Arrays, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """In-memory arrays -> batches of `batch_size` (the GLOBAL batch) with per-token weights, sharded by element
    across workers under multi-worker training (every worker shuffles with the same seed)."""
    x, y, w = data  # x: ids (n, time), or a dict of input arrays (n, ...) for a model with named inputs
    x = dict(x) if isinstance(x, dict) else x.astype(np.int32)
    ds = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int32), w.astype(np.float32)))
    if shuffle:
        ds = ds.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(per_token_weights)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def compile_model(model: keras.Model, tcfg: TrainConfig, steps_per_epoch: int) -> None:
    lr = tcfg.learning_rate
    if tcfg.lr_decay < 1.0:
        lr = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps=max(1, steps_per_epoch),
                                                         decay_rate=tcfg.lr_decay, staircase=True)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=lr, clipnorm=tcfg.clipnorm),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), weighted_metrics=[])


def restore_optimizer(model: keras.Model, source: keras.Model) -> int:
    """Copy `source`'s optimizer variables into `model`'s (built here), matched by name and shape.

    Returns how many were copied (0 when `source` has no optimizer state)."""
    if getattr(source, "optimizer", None) is None or not source.optimizer.variables:
        return 0
    model.optimizer.build(model.trainable_variables)
    saved = {v.path.split("/", 1)[-1]: v for v in source.optimizer.variables}
    copied = 0
    for v in model.optimizer.variables:
        s = saved.get(v.path.split("/", 1)[-1])
        if s is not None and tuple(s.shape) == tuple(v.shape):
            v.assign(s.numpy())
            copied += 1
    return copied


def fit(model: keras.Model, train: Arrays | tf.data.Dataset, val: Arrays | tf.data.Dataset, tcfg: TrainConfig, *,
        log_dir: str | Path | None = None, initial_epoch: int = 0, progress: bool = True,
        hooks: Sequence[keras.callbacks.Callback] = (), placement=None, run_state=None,
        steps_per_epoch: int | None = None, optimizer_from: keras.Model | None = None) -> dict:
    """Train with early stopping on val_loss (best epoch restored). Returns the history dict (nats/token).

    train/val: arrays (X, Y, W) or ready `tf.data` datasets of global batches (a streamed corpus; then give
    `steps_per_epoch` for the learning-rate schedule). placement: an `app.core.distribute.Placement` (default: the
    current strategy, one replica); the model must have been built in `placement.scope()`; compile happens here,
    inside it. `tcfg.batch_size` is per replica. run_state: an `app.core.runstate.RunState` whose callbacks back the
    run up every epoch and restore it when the same run restarts. TensorBoard logs are written by the chief only.
    optimizer_from: a compiled model (e.g. a finished model folder's model.keras) whose optimizer state (Adam's
    moments and iteration count) this run continues from.
    """
    global_batch = tcfg.batch_size * (placement.replicas if placement is not None else 1)
    if isinstance(train, tf.data.Dataset):
        train_ds, steps = train, steps_per_epoch or 1
    else:
        train_ds, steps = make_dataset(train, global_batch, True, tcfg.seed), math.ceil(len(train[1]) / global_batch)
    val_ds = val if isinstance(val, tf.data.Dataset) else make_dataset(val, 1024, False, 0)

    def scope():
        return placement.scope() if placement is not None else contextlib.nullcontext()

    with scope():
        compile_model(model, tcfg, steps)
        if optimizer_from is not None:
            restore_optimizer(model, optimizer_from)
    callbacks: list[keras.callbacks.Callback] = [
        (run_state.early_stopping(tcfg.patience) if run_state is not None else
         keras.callbacks.EarlyStopping(monitor="val_loss", patience=tcfg.patience, restore_best_weights=True)),
        ProgressBar(tcfg.epochs, steps, progress),
        TimeLimit(tcfg.time_limit_min),
        *hooks,
        *(run_state.callbacks() if run_state is not None else ()),
    ]
    if log_dir is not None and (placement is None or placement.is_chief):
        callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False))
    # Keras 3.15's fit starts with a "symbolic build" that all-reduces one input batch across replicas, which
    # MultiWorkerMirroredStrategy cannot do for int32 token ids (ValueError on PerReplica). Our model is already
    # built, so that step is not needed: hiding the model's strategy skips it, and fit, run in the scope, takes
    # the same strategy from the scope. (MirroredStrategy needs the step: without it the LSTM's graph fails.)
    saved_strategy = model._distribute_strategy
    if placement is not None and placement.name == "multi-worker":
        model._distribute_strategy = None
    try:
        with scope():
            hist = model.fit(train_ds, validation_data=val_ds, epochs=tcfg.epochs, initial_epoch=initial_epoch,
                             callbacks=callbacks, verbose=0, shuffle=False)
    finally:
        model._distribute_strategy = saved_strategy
    return {k: [float(v) for v in vals] for k, vals in hist.history.items()}

"""Keras side of `lookback`: the whole-sequence trainer and the document-style inference model (imports Keras).

Both hold the same two layers' weights as the numpy stepper: the LSTM ("rnn_0" in the trainer, "LSTM_cell" in the
inference model; input rows ordered as in lookback.py) and the head ("head": logits over V + n labels; "densor":
the same kernel with a softmax).
"""

from __future__ import annotations

import keras
import numpy as np

from app.core.model import export_weights as _export, import_weights as _import
from app.music.archs.features import lookback_index
from app.music.archs.layers import FoldRepeats, LookbackInput, LookbackStepInput, ZerosLike
from app.music.archs.lookback import LookbackSettings, input_size
from app.music.models import DENSOR_NAME, LSTM_CELL_NAME, OneHotArgmax, TimeSlice


def build_trainer(model_cfg, settings: LookbackSettings, vocab_size: int, seed: int = 0, spq: int = 4):
    """Inputs ids (b, T) int32, lookback_ids (b, T, n) int32, context (b, T, C + n) int8 -> label logits
    (b, T, V + n)."""
    keras.utils.set_random_seed(seed)
    n = len(settings.lookbacks)
    cols = settings.context(spq).size + n
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    lb = keras.Input(shape=(None, n), dtype="int32", name="lookback_ids")
    ctx = keras.Input(shape=(None, cols), dtype="int8", name="context")
    x = LookbackInput(vocab_size, n, name="lookback_input")([ids, lb, ctx])
    x = keras.layers.LSTM(model_cfg.units, return_sequences=True, recurrent_dropout=model_cfg.recurrent_dropout,
                          name="rnn_0")(x)
    if model_cfg.dropout > 0:  # training only; no weights, so the exported layers and the numpy stepper are unchanged
        x = keras.layers.Dropout(model_cfg.dropout, name="dropout_0")(x)
    logits = keras.layers.Dense(vocab_size + n, name="head")(x)
    return keras.Model({"ids": ids, "lookback_ids": lb, "context": ctx}, logits, name="lookback_trainer")


def export_weights(model, model_cfg):
    return _export(model, model_cfg)


def import_weights(model, model_cfg, weights):
    _import(model, model_cfg, weights)


def inference_context(settings: LookbackSettings, Ty: int, time_signature, spq: int = 4,
                      tune=()) -> np.ndarray:
    """The context input of the inference model for one metre (and the tune classes, one per kind of
    settings.tune_classes): (Ty, context size) float32."""
    ctx = settings.context(spq)
    _, pos, cls = ctx.grid(Ty, [(0, *time_signature)])
    return ctx.rows(pos, cls, tune)


def inference_model(weights, model_cfg, settings: LookbackSettings, vocab_size: int, Ty: int = 100,
                    time_signature=(4, 4), spq: int = 4) -> keras.Model:
    """The document's loop for one metre: inputs [x0 (b, 1, V), a0, c0, context (b, Ty, C0)]; at each step the
    shared LSTM_cell and densor, the labels resolved into token probabilities (the Ty outputs, (b, V) each), and the
    one-hot of the most likely token fed back. The lookback wiring follows the metre's bars (static indices)."""
    V, n, u = vocab_size, len(settings.lookbacks), model_cfg.units
    ctx = settings.context(spq)
    bar, pos, _ = ctx.grid(Ty, [(0, *time_signature)])
    idx = lookback_index(bar, pos, settings.lookbacks)
    cell = keras.layers.LSTM(u, return_state=True, name=LSTM_CELL_NAME)
    densor = keras.layers.Dense(V + n, activation="softmax", name=DENSOR_NAME)
    cell(keras.Input(shape=(1, input_size(settings, V, spq))), initial_state=[keras.Input(shape=(u,))] * 2)
    densor.build((None, u))
    cell.set_weights([weights["rnn_0/kernel"], weights["rnn_0/recurrent_kernel"], weights["rnn_0/bias"]])
    densor.set_weights([weights["head/kernel"], weights["head/bias"]])

    x0 = keras.Input(shape=(1, V), name="x0")
    a0 = keras.Input(shape=(u,), name="a0")
    c0 = keras.Input(shape=(u,), name="c0")
    context = keras.Input(shape=(Ty, ctx.size), name="context")
    zeros = ZerosLike(name="no_lookback")(x0)
    step_input = LookbackStepInput(n, name="step_input")
    fold = FoldRepeats(V, name="fold_repeats")
    onehots, outputs = [], []
    a, c, x = a0, c0, x0
    for t in range(Ty):
        lbs = [onehots[j] if j >= 0 else zeros for j in idx[t]]
        before = [onehots[j] if t >= 1 and j >= 0 else zeros for j in (idx[t - 1] if t >= 1 else [-1] * n)]
        row = TimeSlice(t, name=f"context_{t}")(context)
        inp = step_input([x, *lbs, *before, row])
        a, _, c = cell(inp, initial_state=[a, c])
        probs = fold([densor(a), *lbs])
        outputs.append(probs)
        x = OneHotArgmax(name=f"one_hot_{t}")(probs)
        onehots.append(x)
    return keras.Model(inputs=[x0, a0, c0, context], outputs=outputs, name="lookback_inference_model")

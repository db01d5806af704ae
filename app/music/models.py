"""The document's music models on Keras 3, and weight transfer to the fast (whole-sequence / numpy) form.

The document (course "Improvise a Jazz Solo with an LSTM Network"):

  djmodel(Tx, n_a, n_values)          inputs X (Tx, n_values), a0, c0; for each t: X[:, t] -> shared reshapor
                                      -> shared LSTM_cell(x, initial_state=[a, c]) -> shared densor (softmax);
                                      outputs the Tx predictions (a list, one per step).
  music_inference_model(LSTM_cell, densor, Ty)
                                      inputs x0 (1, n_values), a0, c0; Ty steps of cell -> densor -> one-hot of the
                                      argmax fed back as the next x.

Differences from the course code, all forced by Keras 3 and safe loading:
  * the slice X[:, t] and the one-hot step are registered layers (`TimeSlice`, `OneHotArgmax`) with get_config,
    not Lambdas, so saved models load with `keras.saving.load_model(..., safe_mode=True)`;
  * Adam(decay=...) is gone: `compile_djmodel` uses an ExponentialDecay schedule;
  * a multi-output model needs one metric per output: metrics=[["accuracy"]] * Tx.

The fast form is `app.core.model.build_model(ModelConfig(cell, units=n_a, layers=1, input="onehot"), n_values)`:
its layers "rnn_0" and "head" hold exactly the LSTM_cell and densor weights (densor has a softmax, head outputs
logits: same kernel and bias). `doc_to_weights` / `weights_to_doc` move the weights both ways through the
numpy dict of `app.core.model.export_weights`, which `app.core.stepper.NumpyStepper` runs without TensorFlow.
An input row of zeros (the course's x0) is id -1 in the fast form.
"""

from __future__ import annotations

import app.core.tfquiet  # noqa: F401,I001  (before keras: silences TensorFlow start-up lines)
import keras
import numpy as np

from app.core.cells import cell_of_layer, get_cell
from app.core.modelconfig import ModelConfig
from app.errors import OptionError

LSTM_CELL_NAME, DENSOR_NAME, RESHAPOR_NAME = "LSTM_cell", "densor", "reshapor"


@keras.saving.register_keras_serializable(package="app_music")
class TimeSlice(keras.layers.Layer):
    """X (batch, Tx, n) -> X[:, t, :] (batch, n). Replaces the course's Lambda(lambda x: X[:, t, :])."""

    def __init__(self, t: int, **kwargs):
        super().__init__(**kwargs)
        self.t = int(t)

    def call(self, x):
        return x[:, self.t, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "t": self.t}


@keras.saving.register_keras_serializable(package="app_music")
class OneHotArgmax(keras.layers.Layer):
    """Probabilities (batch, n) -> one-hot of the argmax, shape (batch, 1, n): the course's `one_hot` step
    (K.argmax -> tf.one_hot -> RepeatVector(1)) as a registered layer."""

    def call(self, probs):
        n = keras.ops.shape(probs)[-1]
        idx = keras.ops.argmax(probs, axis=-1)
        return keras.ops.expand_dims(keras.ops.one_hot(idx, n, dtype=self.compute_dtype), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1, input_shape[-1])


def make_layers(n_a: int, n_values: int, cell: str = "lstm"):
    """The course's three shared (global) layers: reshapor, LSTM_cell, densor.

    cell: a registered cell (app.core.cells), e.g. "gru" gives a GRU(n_a, return_state=True) in the same place
    (its state is [a] instead of [a, c])."""
    layer_class = get_cell(cell).layer_class()
    reshapor = keras.layers.Reshape((1, n_values), name=RESHAPOR_NAME)
    LSTM_cell = layer_class(n_a, return_state=True, name=LSTM_CELL_NAME)
    densor = keras.layers.Dense(n_values, activation="softmax", name=DENSOR_NAME)
    return reshapor, LSTM_cell, densor


def _cell_call(LSTM_cell, x, a, c):
    """One step of the shared cell; returns (a, c) (for a one-state cell such as a GRU, c is a as well)."""
    states = cell_of_layer(LSTM_cell).states
    out = LSTM_cell(x, initial_state=[a, c][:states])
    return (out[0], out[2]) if states == 2 else (out[0], out[0])


def djmodel(Tx: int, n_a: int, n_values: int, layers=None, cell: str = "lstm") -> keras.Model:
    """The document's training model. layers=(reshapor, LSTM_cell, densor) to share existing ones
    (default: new ones from `make_layers`). Inputs [X (batch, Tx, n_values), a0 (batch, n_a), c0 (batch, n_a)];
    outputs a list of Tx tensors (batch, n_values) of probabilities."""
    reshapor, LSTM_cell, densor = layers if layers is not None else make_layers(n_a, n_values, cell)
    X = keras.Input(shape=(Tx, n_values), name="X")
    a0 = keras.Input(shape=(n_a,), name="a0")
    c0 = keras.Input(shape=(n_a,), name="c0")
    a, c = a0, c0
    outputs = []
    for t in range(Tx):
        x = TimeSlice(t, name=f"slice_{t}")(X)
        x = reshapor(x)
        a, c = _cell_call(LSTM_cell, x, a, c)
        outputs.append(densor(a))
    return keras.Model(inputs=[X, a0, c0], outputs=outputs, name="djmodel")


def music_inference_model(LSTM_cell, densor, n_values: int | None = None, n_a: int | None = None,
                          Ty: int = 100) -> keras.Model:
    """The document's inference model: inputs [x0 (batch, 1, n_values), a0, c0]; Ty outputs (batch, n_values).

    n_values and n_a default to the sizes of the given (built) layers."""
    n_values = int(densor.units) if n_values is None else n_values
    n_a = int(LSTM_cell.units) if n_a is None else n_a
    x0 = keras.Input(shape=(1, n_values), name="x0")
    a0 = keras.Input(shape=(n_a,), name="a0")
    c0 = keras.Input(shape=(n_a,), name="c0")
    a, c, x = a0, c0, x0
    outputs = []
    for t in range(Ty):
        a, c = _cell_call(LSTM_cell, x, a, c)
        out = densor(a)
        outputs.append(out)
        x = OneHotArgmax(name=f"one_hot_{t}")(out)
    return keras.Model(inputs=[x0, a0, c0], outputs=outputs, name="music_inference_model")


def compile_djmodel(model: keras.Model, learning_rate: float = 0.01, decay: float = 0.01,
                    clipnorm: float | None = None) -> None:
    """The course's compile: Adam(lr=0.01, beta_1=0.9, beta_2=0.999, decay=0.01), categorical cross-entropy,
    accuracy. Keras 3: `decay` becomes InverseTimeDecay (lr / (1 + decay * step), what the old argument did),
    and the metric is given once per output."""
    lr = keras.optimizers.schedules.InverseTimeDecay(learning_rate, decay_steps=1, decay_rate=decay) \
        if decay else learning_rate
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=0.9, beta_2=0.999, clipnorm=clipnorm)
    model.compile(optimizer=opt, loss="categorical_crossentropy",
                  metrics=[["accuracy"] for _ in model.outputs])


def doc_inputs(ids: np.ndarray, n_values: int, n_a: int):
    """Token ids (batch, Tx) (-1 = the zero input x0) -> the course's [X one-hot, a0 zeros, c0 zeros]."""
    from app.core.vocab import one_hot

    ids = np.asarray(ids)
    z = np.zeros((ids.shape[0], n_a), np.float32)
    return [one_hot(ids, n_values), z, z.copy()]


def doc_targets(ids: np.ndarray, n_values: int) -> list[np.ndarray]:
    """Target ids (batch, Tx) -> the course's list of Tx one-hot arrays (batch, n_values)."""
    from app.core.vocab import one_hot

    y = one_hot(np.asarray(ids), n_values)
    return [y[:, t] for t in range(y.shape[1])]


# --- weight transfer: document form <-> fast form ---------------------------------------------------------------

def fast_config(LSTM_cell) -> ModelConfig:
    """The ModelConfig of the fast form that holds exactly these weights."""
    return ModelConfig(cell=cell_of_layer(LSTM_cell).name, units=int(LSTM_cell.units), layers=1,
                       dropout=0.0, input="onehot")


def doc_to_weights(LSTM_cell, densor) -> dict[str, np.ndarray]:
    """LSTM_cell (kernel, recurrent_kernel, bias) and densor (kernel, bias) -> the numpy dict of export_weights."""
    k, r, b = LSTM_cell.get_weights()
    hk, hb = densor.get_weights()
    return {"rnn_0/kernel": k, "rnn_0/recurrent_kernel": r, "rnn_0/bias": b, "head/kernel": hk, "head/bias": hb}


def weights_to_doc(weights: dict[str, np.ndarray], LSTM_cell, densor) -> None:
    """Inverse of doc_to_weights: load a fast-form weight dict (1 layer, one-hot input) into the doc layers."""
    if any(k.startswith("rnn_1/") for k in weights) or "embed" in weights:
        raise OptionError("only a 1-layer model with one-hot input has the document's LSTM_cell/densor form")
    LSTM_cell.set_weights([weights["rnn_0/kernel"], weights["rnn_0/recurrent_kernel"], weights["rnn_0/bias"]])
    densor.set_weights([weights["head/kernel"], weights["head/bias"]])


def build_doc_layers(weights: dict[str, np.ndarray], cfg: ModelConfig, n_values: int):
    """(reshapor, LSTM_cell, densor) built and holding `weights` (e.g. from a model folder)."""
    if cfg.layers != 1 or cfg.input != "onehot":
        raise OptionError(f"the document form needs layers=1 and input=onehot, the model has layers={cfg.layers}, "
                          f"input={cfg.input}")
    reshapor, LSTM_cell, densor = make_layers(cfg.units, n_values, cfg.cell)
    state = [keras.Input(shape=(cfg.units,))] * get_cell(cfg.cell).states
    LSTM_cell(keras.Input(shape=(1, n_values)), initial_state=state)
    densor.build((None, cfg.units))
    weights_to_doc(weights, LSTM_cell, densor)
    return reshapor, LSTM_cell, densor

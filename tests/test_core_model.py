"""The numpy stepper is the Keras model: same probabilities, for every cell/input/depth; save -> load is exact."""

import numpy as np
import pytest

from app.core.modelconfig import ModelConfig
from app.core.sampling import softmax


@pytest.mark.parametrize("cfg", [
    ModelConfig(cell="lstm", units=12, layers=1, input="onehot"),
    ModelConfig(cell="lstm", units=10, layers=2, input="embedding", embed_dim=6, dropout=0.3),
    ModelConfig(cell="gru", units=9, layers=2, input="onehot"),
    ModelConfig(cell="gru", units=7, layers=1, input="embedding", embed_dim=5),
    ModelConfig(cell="rnn", units=8, layers=2, input="embedding", embed_dim=4),
], ids=["lstm-onehot", "lstm2-embed", "gru2-onehot", "gru-embed", "rnn2-embed"])
@pytest.mark.slow
def test_numpy_stepper_equals_keras_model(cfg):
    from app.core.model import build_model, export_weights
    from app.core.stepper import NumpyStepper

    vocab = 11
    model = build_model(cfg, vocab, seed=3)
    # random weights of a realistic scale (fresh biases are all zero, which would hide bias mistakes)
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(scale=0.4, size=w.shape).astype("float32") for w in model.get_weights()])
    ids = rng.integers(0, vocab, size=(5, 14)).astype("int32")
    keras_probs = softmax(np.asarray(model(ids, training=False)))
    stepper = NumpyStepper(export_weights(model, cfg), cfg, vocab)
    numpy_probs = softmax(stepper.run(ids))
    np.testing.assert_allclose(numpy_probs, keras_probs, atol=1e-5)


def test_every_registered_cell_builds_and_an_unknown_cell_is_an_error():
    from app.core.cells import CELLS, get_cell
    from app.errors import OptionError

    assert {"lstm", "gru", "rnn"} <= set(CELLS)
    for name in CELLS:
        assert ModelConfig(cell=name).cell == name
    with pytest.raises(OptionError, match="unknown cell 'lstmm'.*lstm, gru, rnn"):
        get_cell("lstmm")
    with pytest.raises(OptionError, match="cell must be one of"):
        ModelConfig(cell="transformer")


@pytest.mark.slow
def test_import_weights_is_the_inverse_of_export():
    from app.core.model import build_model, export_weights, import_weights

    cfg = ModelConfig(cell="lstm", units=6, layers=2)
    a, b = build_model(cfg, 8, seed=1), build_model(cfg, 8, seed=2)
    import_weights(b, cfg, export_weights(a, cfg))
    ids = np.arange(8, dtype="int32")[None]
    np.testing.assert_array_equal(np.asarray(a(ids)), np.asarray(b(ids)))


@pytest.mark.slow
def test_minus_one_id_is_a_zero_input():
    from app.core.model import build_model, export_weights
    from app.core.stepper import NumpyStepper

    cfg = ModelConfig(units=5)
    model = build_model(cfg, 4)
    st = NumpyStepper(export_weights(model, cfg), cfg, 4)
    logits, _ = st.step(np.array([-1]), st.zero_state(1))
    # a zero input and zero state leave only the biases: h = o * tanh(i * g) with biases of a fresh model
    k = export_weights(model, cfg)
    u = 5
    z = k["rnn_0/bias"]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = sig(z[3 * u:]) * np.tanh(sig(z[:u]) * np.tanh(z[2 * u:3 * u]))
    np.testing.assert_allclose(logits[0], h @ k["head/kernel"] + k["head/bias"], atol=1e-6)


@pytest.mark.slow
def test_padding_never_counts_in_the_loss():
    """Changing targets at padded steps changes neither the loss nor the gradients."""
    import keras
    import tensorflow as tf

    from app.core.model import build_model
    from app.core.vocab import shift_xy

    cfg = ModelConfig(units=8)
    model = build_model(cfg, 9, seed=0)
    x, y, w = shift_xy([np.array([1, 4, 5, 6, 2]), np.array([1, 7, 2])], pad_id=0)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    def loss_and_grads(targets):
        with tf.GradientTape() as tape:
            loss = loss_fn(targets, model(x, training=False), sample_weight=w)
        return float(loss), [g.numpy() for g in tape.gradient(loss, model.trainable_weights)]

    y2 = y.copy()
    y2[w == 0] = 8  # garbage where there is padding
    l1, g1 = loss_and_grads(y)
    l2, g2 = loss_and_grads(y2)
    assert l1 == pytest.approx(l2, abs=1e-7)
    for a, b in zip(g1, g2):
        np.testing.assert_allclose(a, b, atol=1e-7)
    y3 = y.copy()
    y3[0, 0] = 8  # a real target does count
    assert loss_and_grads(y3)[0] != pytest.approx(l1, abs=1e-4)


def test_masked_nll_ignores_padding_columns():
    from app.core.metrics import masked_nll

    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 3, 5))
    y = np.array([[1, 2, 3], [4, 0, 0]])
    w = np.array([[1, 1, 1], [1, 0, 0]], float)
    nll, n = masked_nll(logits, y, w)
    padded = np.concatenate([logits, rng.normal(size=(2, 4, 5))], axis=1)
    nll2, n2 = masked_nll(padded, np.pad(y, ((0, 0), (0, 4))), np.pad(w, ((0, 0), (0, 4))))
    assert n == n2 == 4 and nll == pytest.approx(nll2)

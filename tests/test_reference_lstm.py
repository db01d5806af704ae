"""The numpy LSTM (course equations) is an oracle for our Keras models: every a⟨t⟩, c⟨t⟩ and ŷ⟨t⟩ agree within 1e-5."""

import numpy as np
import pytest

from app.reference.lstm import lstm_cell_forward, lstm_forward, params_from_keras, sigmoid, softmax

keras = pytest.importorskip("keras")

pytestmark = pytest.mark.slow  # builds Keras models

TOL = 1e-5


def randomise(layer, rng, scale=0.6):
    """Replace a layer's weights by random ones (Keras' init leaves biases at 0/1: too easy a test)."""
    layer.set_weights([rng.normal(0.0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])


def keras_cell_states(lstm_layer, x_btf, a0, c0):
    """Run keras.layers.LSTMCell with the layer's weights step by step: (batch, T, n_a) hidden and cell states."""
    n_a = lstm_layer.units
    cell = keras.layers.LSTMCell(n_a)
    cell.build((None, x_btf.shape[-1]))
    cell.set_weights(lstm_layer.get_weights())
    h, c, hs, cs = a0, c0, [], []
    for t in range(x_btf.shape[1]):
        h, (h, c) = cell(x_btf[:, t, :], [h, c])
        hs.append(np.asarray(h))
        cs.append(np.asarray(c))
    return np.stack(hs, axis=1), np.stack(cs, axis=1)


def test_cell_equations_by_hand():
    """One step on scalars, written out: guards the gate wiring independently of Keras."""
    p = {k: np.array([[v]]) for k, v in dict(bf=0.1, bi=-0.2, bc=0.3, bo=0.4, by=0.0).items()}
    p.update(Wf=np.array([[0.5, -1.0]]), Wi=np.array([[1.5, 0.2]]), Wc=np.array([[-0.7, 0.9]]),
             Wo=np.array([[0.3, 0.8]]), Wy=np.array([[1.0], [-1.0]]))
    a_prev, c_prev, x = 0.25, -0.5, 2.0
    f = 1 / (1 + np.exp(-(0.5 * a_prev - 1.0 * x + 0.1)))
    i = 1 / (1 + np.exp(-(1.5 * a_prev + 0.2 * x - 0.2)))
    cc = np.tanh(-0.7 * a_prev + 0.9 * x + 0.3)
    c = f * c_prev + i * cc
    o = 1 / (1 + np.exp(-(0.3 * a_prev + 0.8 * x + 0.4)))
    a = o * np.tanh(c)
    a_next, c_next, y, _ = lstm_cell_forward(np.array([[x]]), np.array([[a_prev]]), np.array([[c_prev]]), p)
    assert a_next[0, 0] == pytest.approx(a) and c_next[0, 0] == pytest.approx(c)
    assert y[:, 0] == pytest.approx([np.exp(a) / (np.exp(a) + np.exp(-a)), np.exp(-a) / (np.exp(a) + np.exp(-a))])
    assert sigmoid(np.array([-800.0, 0.0, 800.0])) == pytest.approx([0.0, 0.5, 1.0])
    assert softmax(np.array([[1000.0], [1000.0]]))[:, 0] == pytest.approx([0.5, 0.5])


def test_oracle_matches_names_model():
    """Our names model (one-hot -> LSTM rnn_0 -> Dense head) against lstm_forward with converted weights."""
    from app.core.model import build_model, export_weights
    from app.core.modelconfig import ModelConfig

    cfg = ModelConfig(cell="lstm", units=8, layers=1, input="onehot")
    vocab, m, T = 11, 5, 7
    model = build_model(cfg, vocab, seed=3)
    rng = np.random.default_rng(0)
    randomise(model.get_layer("rnn_0"), rng)
    randomise(model.get_layer("head"), rng)
    ids = rng.integers(0, vocab, size=(m, T)).astype(np.int32)

    probe = keras.Model(model.inputs, [model.get_layer("rnn_0").output, model.outputs[0]])
    hidden, logits = (np.asarray(v, np.float64) for v in probe.predict(ids, verbose=0))
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = e / e.sum(axis=-1, keepdims=True)

    w = export_weights(model, cfg)
    params = params_from_keras(w["rnn_0/kernel"], w["rnn_0/recurrent_kernel"], w["rnn_0/bias"],
                               w["head/kernel"], w["head/bias"])
    x = np.eye(vocab)[ids].transpose(2, 0, 1)  # (n_x, m, T_x)
    a, y, c, _ = lstm_forward(x, np.zeros((cfg.units, m)), params)

    np.testing.assert_allclose(a.transpose(1, 2, 0), hidden, atol=TOL, rtol=0)
    np.testing.assert_allclose(y.transpose(1, 2, 0), probs, atol=TOL, rtol=0)
    zeros = np.zeros((m, cfg.units), np.float32)
    hs, cs = keras_cell_states(model.get_layer("rnn_0"), np.eye(vocab, dtype=np.float32)[ids], zeros, zeros)
    np.testing.assert_allclose(a.transpose(1, 2, 0), hs, atol=TOL, rtol=0)
    np.testing.assert_allclose(c.transpose(1, 2, 0), cs, atol=TOL, rtol=0)
    assert np.abs(c).max() > 0.5  # the gates are not all saturated shut: the comparison covers real values


def test_oracle_matches_music_lstm_cell_and_densor():
    """The document's music structure: LSTM_cell(x, initial_state=[a, c]) one step at a time, then densor(a)."""
    n_values, n_a, m, T = 12, 6, 4, 6
    keras.utils.set_random_seed(1)
    from app.music.models import make_layers

    _, lstm_cell, densor = make_layers(n_a, n_values)  # the product's own shared layers
    rng = np.random.default_rng(1)
    lstm_cell.build((None, 1, n_values))
    densor.build((None, n_a))
    randomise(lstm_cell, rng)
    randomise(densor, rng)

    ids = rng.integers(0, n_values, size=(m, T))
    onehots = np.eye(n_values, dtype=np.float32)[ids]  # (m, T, n_values)
    a0 = rng.normal(0, 0.5, (m, n_a)).astype(np.float32)
    c0 = rng.normal(0, 0.5, (m, n_a)).astype(np.float32)
    a_k, c_k, outs = a0, c0, []
    As, Cs = [], []
    for t in range(T):
        a_k, _, c_k = lstm_cell(onehots[:, t:t + 1, :], initial_state=[a_k, c_k])
        outs.append(np.asarray(densor(a_k)))
        As.append(np.asarray(a_k))
        Cs.append(np.asarray(c_k))

    k, r, b = lstm_cell.get_weights()
    params = params_from_keras(k, r, b, *densor.get_weights())
    a, y, c, _ = lstm_forward(onehots.transpose(2, 0, 1), a0.T, params, c0=c0.T)
    np.testing.assert_allclose(a.transpose(2, 1, 0), np.stack(As), atol=TOL, rtol=0)
    np.testing.assert_allclose(c.transpose(2, 1, 0), np.stack(Cs), atol=TOL, rtol=0)
    np.testing.assert_allclose(y.transpose(2, 1, 0), np.stack(outs), atol=TOL, rtol=0)


def test_converter_rejects_non_lstm_weights():
    with pytest.raises(ValueError, match="not LSTM weights"):
        params_from_keras(np.zeros((3, 9)), np.zeros((3, 9)), np.zeros(9), np.zeros((3, 2)), np.zeros(2))

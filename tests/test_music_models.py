"""The document's djmodel / music_inference_model on Keras 3 and their equality with the fast path.

Equality is checked teacher-forced first (same weights, same inputs: per-step probabilities within 1e-5), then
free-running argmax sequences, only for seeds where no step has a near-tie (top-2 margin > 1e-3).
"""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from app.core.model import build_model, export_weights, import_weights  # noqa: E402
from app.core.sampling import softmax  # noqa: E402
from app.core.stepper import NumpyStepper  # noqa: E402
from app.music import models as M  # noqa: E402

N_A, V, TX = 12, 10, 9


pytestmark = pytest.mark.slow  # builds and runs Keras models

def doc_layers(cell: str, seed: int, scale: float = 1.0):
    """Built doc layers with random (seeded, optionally scaled-up) weights."""
    keras.utils.set_random_seed(seed)
    layers = M.make_layers(N_A, V, cell)
    M.djmodel(TX, N_A, V, layers, cell=cell)  # builds the shared layers
    rng = np.random.default_rng(seed)
    for layer in layers[1:]:
        layer.set_weights([rng.normal(0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])
    return layers


def random_ids(rng, batch, length):
    ids = rng.integers(0, V, (batch, length))
    ids[:, 0] = -1  # the course's x0 = zeros
    return ids


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_teacher_forced_probabilities_equal(cell):
    layers = doc_layers(cell, seed=3)
    dj = M.djmodel(TX, N_A, V, layers, cell=cell)
    rng = np.random.default_rng(0)
    ids = random_ids(rng, 5, TX)
    doc = np.stack(dj.predict(M.doc_inputs(ids, V, N_A), verbose=0), axis=1)  # (batch, Tx, V)

    weights = M.doc_to_weights(layers[1], layers[2])
    cfg = M.fast_config(layers[1])
    assert cfg.cell == cell and cfg.units == N_A
    fast = build_model(cfg, V, seed=99)  # different init: the weights must come from the transfer
    import_weights(fast, cfg, weights)
    whole = softmax(np.asarray(fast(ids.astype(np.int32)), np.float64))
    numpy_path = softmax(NumpyStepper(weights, cfg, V).run(ids).astype(np.float64))

    assert doc.shape == whole.shape == numpy_path.shape == (5, TX, V)
    np.testing.assert_allclose(whole, doc, atol=1e-5, rtol=0)
    np.testing.assert_allclose(numpy_path, doc, atol=1e-5, rtol=0)
    assert np.abs(doc - doc[:, :1]).max() > 1e-3  # the probabilities really change over time


def test_weights_move_both_ways():
    layers = doc_layers("lstm", seed=1)
    w = M.doc_to_weights(layers[1], layers[2])
    cfg = M.fast_config(layers[1])
    fast = build_model(cfg, V, seed=5)
    import_weights(fast, cfg, w)
    back = export_weights(fast, cfg)
    assert set(back) == set(w)
    for k in w:
        np.testing.assert_array_equal(back[k], w[k])
    # fast -> doc: new doc layers built from the fast form's weights hold the same arrays
    _, cell2, dens2 = M.build_doc_layers(back, cfg, V)
    for a, b in zip(cell2.get_weights() + dens2.get_weights(), layers[1].get_weights() + layers[2].get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="1-layer"):
        M.weights_to_doc({**w, "rnn_1/kernel": w["rnn_0/kernel"]}, cell2, dens2)


def greedy_numpy(weights, cfg, steps, a0, c0):
    st = NumpyStepper(weights, cfg, V)
    state = [(a0, c0)]
    x = np.full(a0.shape[0], -1)
    seq, probs = [], []
    for _ in range(steps):
        logits, state = st.step(x, state)
        p = softmax(logits.astype(np.float64))
        x = p.argmax(1)
        seq.append(x)
        probs.append(p)
    return np.stack(seq, 1), np.stack(probs, 1)


def test_inference_model_equals_fast_path():
    ty = 12
    layers = doc_layers("lstm", seed=0)
    inf = M.music_inference_model(layers[1], layers[2], Ty=ty)  # built once; weights are reset per seed
    checked = 0
    for seed in range(5):
        rng = np.random.default_rng(seed)
        for layer in layers[1:]:
            layer.set_weights([rng.normal(0, 2.0, w.shape).astype(np.float32) for w in layer.get_weights()])
        k, b = layers[2].get_weights()
        layers[2].set_weights([k, np.zeros_like(b)])  # no output bias: the argmax follows the state
        a0 = rng.normal(0, 0.5, (3, N_A)).astype(np.float32)  # non-zero initial state, as the inputs allow
        c0 = rng.normal(0, 0.5, (3, N_A)).astype(np.float32)
        x0 = np.zeros((3, 1, V), np.float32)
        doc = np.stack(inf.predict([x0, a0, c0], verbose=0), axis=1)  # (3, Ty, V)
        doc_seq = doc.argmax(-1)
        weights = M.doc_to_weights(layers[1], layers[2])
        cfg = M.fast_config(layers[1])
        # teacher-forced on the inference model's own choices: probabilities equal whatever the ties
        st = NumpyStepper(weights, cfg, V)
        inputs = np.concatenate([np.full((3, 1), -1), doc_seq[:, :-1]], axis=1)
        state, tf_probs = [(a0, c0)], []
        for t in range(ty):
            logits, state = st.step(inputs[:, t], state)
            tf_probs.append(softmax(logits.astype(np.float64)))
        np.testing.assert_allclose(np.stack(tf_probs, 1), doc, atol=1e-5, rtol=0)
        # free-running argmax: identical where no step has a near-tie
        top2 = np.sort(doc, axis=-1)[..., -2:]
        if (top2[..., 1] - top2[..., 0]).min() <= 1e-3:
            continue
        seq, _ = greedy_numpy(weights, cfg, ty, a0, c0)
        np.testing.assert_array_equal(seq, doc_seq)
        assert len(np.unique(doc_seq)) > 2  # a non-trivial melody
        checked += 1
    assert checked >= 2, "too few seeds without near-ties to compare free-running sequences"


def test_one_hot_argmax_layer():
    layer = M.OneHotArgmax()
    probs = np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], np.float32)
    out = np.asarray(layer(probs))
    assert out.shape == (2, 1, 3)
    np.testing.assert_array_equal(out[:, 0], [[0, 1, 0], [1, 0, 0]])
    clone = M.OneHotArgmax.from_config(layer.get_config())
    np.testing.assert_array_equal(np.asarray(clone(probs)), out)
    sl = M.TimeSlice(2)
    x = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    np.testing.assert_array_equal(np.asarray(M.TimeSlice.from_config(sl.get_config())(x)), x[:, 2])


def test_document_models_train_and_load_with_safe_mode(tmp_path):
    layers = doc_layers("lstm", seed=0, scale=0.3)
    dj = M.djmodel(TX, N_A, V, layers)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in dj.layers)
    M.compile_djmodel(dj, learning_rate=0.05)
    rng = np.random.default_rng(0)
    # a learnable pattern: Y = X shifted, over a cyclic sequence 0 1 2 ... 9 0 1 ...
    start = rng.integers(0, V, 32)
    seq = (start[:, None] + np.arange(TX + 1)[None, :]) % V
    x_ids = seq[:, :-1].copy()
    x_ids[:, 0] = -1
    before = [w.copy() for w in layers[1].get_weights()]
    hist = dj.fit(M.doc_inputs(x_ids, V, N_A), M.doc_targets(seq[:, 1:], V), epochs=3, batch_size=16, verbose=0)
    losses = hist.history["loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert any(not np.array_equal(a, b) for a, b in zip(before, layers[1].get_weights()))

    inf = M.music_inference_model(layers[1], layers[2], Ty=7)
    inputs = M.doc_inputs(np.full((2, TX), -1), V, N_A)
    x0 = np.zeros((2, 1, V), np.float32)
    ref_dj = np.stack(dj.predict(inputs, verbose=0), 1)
    ref_inf = np.stack(inf.predict([x0, inputs[1], inputs[2]], verbose=0), 1)
    dj.save(tmp_path / "dj.keras")
    inf.save(tmp_path / "inf.keras")
    dj2 = keras.saving.load_model(tmp_path / "dj.keras", safe_mode=True)
    inf2 = keras.saving.load_model(tmp_path / "inf.keras", safe_mode=True)
    np.testing.assert_allclose(np.stack(dj2.predict(inputs, verbose=0), 1), ref_dj, atol=1e-6)
    np.testing.assert_allclose(np.stack(inf2.predict([x0, inputs[1], inputs[2]], verbose=0), 1), ref_inf, atol=1e-6)
    # the reloaded layers still share weights with the fast form
    w2 = M.doc_to_weights(dj2.get_layer(M.LSTM_CELL_NAME), dj2.get_layer(M.DENSOR_NAME))
    w1 = M.doc_to_weights(layers[1], layers[2])
    for k in w1:
        np.testing.assert_array_equal(w1[k], w2[k])

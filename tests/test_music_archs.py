"""The arch registry and the structure-aware archs (lookback, attention): features and labels on hand-made
melodies, the numpy fast path equal to the Keras trainer and to the document-style inference model (within 1e-5),
metre conditioning, registry errors, and (slow) training each arch from a tiny MIDI corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.core.modelconfig import ModelConfig
from app.core.sampling import softmax
from app.errors import ModelFolderError, OptionError
from app.music.archs import features as F
from app.music.archs.base import folder_arch, get_arch

V = 9  # hold, rest, 7 pitches


# --- features and labels (numpy only) ----------------------------------------------------------------------------
def bars(*bar_tokens):
    return np.array([t for b in bar_tokens for t in b], np.int64)


def test_tune_repeating_bar_1_at_bar_3_gets_the_2_bar_repeat_label():
    # 2/4 at 4 steps per quarter: 8 steps per bar. Bar 3 repeats bar 1 exactly; bar 2 differs from both.
    b1 = [2, 0, 0, 0, 3, 0, 4, 0]
    b2 = [5, 0, 6, 0, 7, 0, 0, 1]
    s = bars(b1, b2, b1)
    bar, pos = F.bar_grid(len(s), 4, [(0, 2, 4)])
    idx = F.lookback_index(bar, pos, (1, 2))
    np.testing.assert_array_equal(idx[:8], -1)  # bar 1 has nothing before it
    np.testing.assert_array_equal(idx[8:16, 0], np.arange(8))  # bar 2 looks 1 bar back at bar 1
    np.testing.assert_array_equal(idx[8:16, 1], -1)
    np.testing.assert_array_equal(idx[16:, 1], np.arange(8))  # bar 3: 2 bars back is bar 1
    labels = F.lookback_labels(s, idx, V)
    np.testing.assert_array_equal(labels[16:], V + 1)  # every step of bar 3: "repeat 2 bars ago"
    np.testing.assert_array_equal(labels[:8], s[:8])  # bar 1: the tokens themselves
    # bar 2 vs bar 1: equal only where both hold (0 at steps 1, 3, 5) -> the 1-bar repeat label there
    expect = np.where(np.array(b2) == np.array(b1), V + 0, b2)
    np.testing.assert_array_equal(labels[8:16], expect)
    # the input flags say whether the *previous* token repeated: at step 17 (s[16] == s[0]) for 2 bars
    flags = F.repeat_flags(s, idx)
    assert flags[17, 1] == 1 and flags[16, 1] == 0 and flags[0].sum() == 0
    np.testing.assert_array_equal(flags[17:, 1], 1)
    # Magenta's rule: the most distant matching lookback wins (bar 3 equals bar 1, and where bar 2 holds, bar 2)
    both = (np.array(b1) == np.array(b2))
    assert labels[16 + np.flatnonzero(both)[0]] == V + 1


def test_lookback_follows_the_metre_and_its_changes():
    bar, pos = F.bar_grid(40, 4, [(0, 3, 4), (24, 4, 4)])  # two bars of 3/4 (12 steps), then 4/4
    idx = F.lookback_index(bar, pos, (1,))
    assert idx[12, 0] == 0 and idx[23, 0] == 11  # second 3/4 bar looks back one 3/4 bar
    assert idx[24, 0] == 12 and idx[35, 0] == 23  # first 4/4 bar: same position in the 3/4 bar before
    np.testing.assert_array_equal(idx[36:40, 0], -1)  # positions 12..15 do not exist in a 3/4 bar
    ctx = F.MetreContext(counter_bits=5)
    _, p, cls = ctx.grid(40, [(0, 3, 4), (24, 4, 4)])
    assert cls[0] == ctx.metres.index("3/4") and cls[30] == ctx.metres.index("4/4")
    rows = ctx.rows(p, cls)
    np.testing.assert_array_equal(rows[13, :5], [1, -1, -1, -1, -1])  # position 1 in its bar
    np.testing.assert_array_equal(rows[11, :5], [1, 1, -1, 1, -1])  # position 11 = 0b01011
    assert ctx.metre_class(7, 8) == len(ctx.metres)  # "other"


def test_lookback_after_a_pickup_counts_the_partial_first_bar():
    # 2/4 (8 steps a bar) with a pickup of 2 steps: the first bar line is at step 2, the pickup is bar 0 whose
    # bar line lies at step -6. Real corpus tunes start like this (a played-order tune from ABC).
    bar, pos = F.bar_grid(26, 4, [(-6, 2, 4)])
    assert pos[0] == 6 and pos[2] == 0
    idx = F.lookback_index(bar, pos, (1, 2))
    np.testing.assert_array_equal(idx[:2], -1)  # the pickup has nothing before it
    np.testing.assert_array_equal(idx[2:8, 0], -1)  # bar 1, positions 0..5: the pickup bar lacks them
    assert list(idx[8:10, 0]) == [0, 1]  # bar 1, positions 6, 7: the pickup's two steps
    np.testing.assert_array_equal(idx[10:18, 0], np.arange(2, 10))  # bar 2 looks back at bar 1
    np.testing.assert_array_equal(idx[18:26, 1], np.arange(2, 10))  # bar 3 looks 2 bars back at bar 1
    assert list(idx[16:18, 1]) == [0, 1] and (idx[10:16, 1] == -1).all()
    _, p, cls = F.MetreContext().grid(26, [(-6, 2, 4), (18, 3, 4)])
    np.testing.assert_array_equal(p, pos[:18].tolist() + list(range(8)))
    np.testing.assert_array_equal(cls, [F.DEFAULT_METRES.index("2/4")] * 18 + [F.DEFAULT_METRES.index("3/4")] * 8)


def test_fold_repeats_moves_label_mass_and_drops_missing_lookbacks():
    p = np.array([[0.1, 0.2, 0.1, 0.3, 0.3]])  # V = 3 tokens, 2 repeat labels
    np.testing.assert_allclose(F.fold_repeats(p, np.array([[2, 0]]), 3), [[0.4, 0.2, 0.4]])
    np.testing.assert_allclose(F.fold_repeats(p, np.array([[2, -1]]), 3), [[0.1 / 0.7, 0.2 / 0.7, 0.4 / 0.7]])


def test_tune_classes_from_hand_made_tunes():
    # ids: 0 hold, 1 rest, 2 + k the k-th pitch (the vocabulary's lowest pitch is class 0 of the rotation)
    even = [2, 0, 4, 0, 6, 0, 7, 0] * 4  # eighth notes (2 steps each): no odd-sixteenth notes
    dotted = [2, 0, 0, 4] * 8  # dotted eighth (3 steps) + sixteenth (1): every note odd
    some = even[:24] + [2, 0, 0, 4, 6, 0, 0, 4]  # 12 + 4 notes, 4 of them odd: 25 %
    assert F.rhythm_class(np.array(even)) == 0
    assert F.rhythm_class(np.array(dotted)) == 3
    assert F.rhythm_class(np.array(some)) == 1
    assert F.rhythm_class(np.array([0, 0, 1, 0])) == 0  # no notes
    # a rest ends a note: 2 steps then a rest counts as 2 (even), not 4
    assert F.rhythm_class(np.array([2, 1, 0, 0] * 8)) == 3  # 1 step each: sixteenth then rest
    assert F.rhythm_class(np.array([2, 0, 1, 0] * 8)) == 0
    # scale: the notes of the collection starting 2 semitones above the lowest pitch (D major from C)
    d_major = [2 + 2 + m for m in F.MAJOR]
    assert F.scale_class(np.array(d_major * 3)) == 2
    assert F.scale_class(np.array([2 + 12 + 7 + m for m in F.MAJOR])) == 7  # an octave up: same rotation
    assert F.tune_classes(np.array(dotted), ("rhythm", "scale")) == (3, 0)
    # tonic: an A-minor tune (from C: A C E on the long notes) in the C collection sits 9 above its major tonic;
    # the same notes centred on C are major (0); G mixolydian (G B D, F natural) sits 7 above C
    def tune(centre, others):  # the centre on long notes, the rest of the collection on short ones
        return np.array([t for c in centre for t in (2 + c, 0, 0, 0)] + [2 + o for o in others] * 2)
    rest = [m for m in F.MAJOR]
    assert F.tonic_class(tune([9, 12, 16, 9, 21], rest)) == 9
    assert F.tonic_class(tune([0, 4, 7, 12, 0], rest)) == 0
    assert F.tonic_class(tune([7, 11, 14, 7, 19, 5], rest)) == 7
    assert F.scale_class(tune([7, 11, 14, 7, 19, 5], rest)) == 0
    with pytest.raises(OptionError, match="tune classes"):
        F.check_tune_kinds(("rhythm", "mode"))


def test_tune_prior_counts_per_metre_and_draws_from_it():
    even, dotted = np.array([2, 0, 4, 0] * 8), np.array([2, 0, 0, 4] * 8)
    prior = F.tune_prior([even, even, dotted, even], [[(0, 4, 4)], [(0, 4, 4)], [(0, 4, 4)], [(0, 6, 8)]],
                         ("rhythm",))
    assert prior == {"4/4": [[0, 2], [3, 1]], "6/8": [[0, 1]]}
    assert F.check_tune_prior(prior, ("rhythm",)) is prior
    rng = np.random.default_rng(0)
    draws = F.draw_tune_classes(prior, "4/4", 3000, rng)
    assert abs(np.mean([d == (3,) for d in draws]) - 1 / 3) < 0.03
    assert set(F.draw_tune_classes(prior, "6/8", 50, rng)) == {(0,)}
    assert set(F.draw_tune_classes(prior, "3/4", 200, rng)) == {(0,), (3,)}  # unseen metre: all pooled
    assert set(F.draw_tune_classes(prior, "4/4", 20, rng, fixed={0: 2})) == {(2,)}  # no row has it: set
    # what choosing the classes costs under the prior (add-one over the 4 rhythm classes): 4/4 has 3 tunes
    nats = F.tune_class_nats(prior, [even, dotted], [[(0, 4, 4)], [(0, 4, 4)]], ("rhythm",))
    assert nats == pytest.approx(-np.log(3 / 7) - np.log(2 / 7))
    for bad in ({"4/4": [[0]]}, {"4/4": [[4, 1]]}, {"4/4": [[0, 0]]}, {"x": [[0, 1]]}, {}):
        with pytest.raises(OptionError):
            F.check_tune_prior(bad, ("rhythm",))


def test_parse_time_signature():
    assert F.parse_time_signature("6/8") == (6, 8)
    for bad in ("6-8", "0/4", "3/5", "x/4"):
        with pytest.raises(OptionError, match="time signature"):
            F.parse_time_signature(bad)


def test_registry_names_and_errors():
    from app.music.archs import arch_names

    assert {"basic", "lookback", "attention"} <= set(arch_names())
    with pytest.raises(OptionError, match="unknown arch 'transformer'.*basic"):
        get_arch("transformer")
    with pytest.raises(ModelFolderError, match="unknown to this version"):
        folder_arch({"arch": {"name": "transformer"}})
    arch, settings = folder_arch({})  # an old folder without "arch" is basic
    assert arch.name == "basic"
    arch, settings = folder_arch({"arch": {"name": "lookback", "settings": {"lookbacks": [1, 2, 4, 8]}}})
    assert settings.lookbacks == (1, 2, 4, 8)
    with pytest.raises(OptionError, match="unknown option"):
        folder_arch({"arch": {"name": "lookback", "settings": {"lookback": [1]}}})
    with pytest.raises(OptionError, match="increasing"):
        arch.make_settings({"lookbacks": [2, 1]})


# --- fast path == Keras (trainer and document-style inference model) ----------------------------------------------
SMALL = {"lookback": {"lookbacks": (1, 2)}, "attention": {"attn_length": 6, "attn_dim": 5},
         "lookback+tunes": {"lookbacks": (1, 2), "tune_classes": ("rhythm", "scale", "tonic")}}
SPECS = ["lookback", "lookback+tunes", "attention"]
SEEDS = {"lookback+tunes": 4}  # random weights whose greedy choices vary (seeds 2 and 3 repeat one token)
CFG = ModelConfig(cell="lstm", units=8, layers=1, input="onehot")
METRES = [[(0, 2, 4)], [(0, 3, 8)], [(0, 2, 4), (16, 3, 4)]]


def tune_pieces(rng, n=3, length=40):
    """Random tokens whose bars (8 steps) often repeat the bar 1 or 2 before, so repeat labels occur."""
    out = []
    for _ in range(n):
        s = list(rng.integers(0, V, 8))
        while len(s) < length:
            k = rng.integers(0, 3)
            s += list(rng.integers(0, V, 8)) if k == 0 else s[-8 * k:][:8]
        out.append(np.array(s[:length], np.int32))
    return out


@pytest.fixture(scope="module")
def keras_mod():
    return pytest.importorskip("keras")


def randomised(spec, seed=1, scale=0.6):
    arch = get_arch(spec.split("+")[0])
    settings = arch.make_settings(SMALL[spec])
    trainer = arch.keras().build_trainer(CFG, settings, V, seed=seed)
    rng = np.random.default_rng(seed)
    for layer in trainer.layers:
        layer.set_weights([rng.normal(0, scale, w.shape).astype(np.float32) for w in layer.get_weights()])
    return arch, settings, trainer


def tunes_of(st, pieces):
    """Per-row tune classes for a tune-conditioned stepper (None otherwise: the arch takes none)."""
    return [st.tune_of(p) for p in pieces] if getattr(st, "ctx", None) is not None and st.ctx.tune else None


@pytest.mark.parametrize("spec", SPECS)
def test_numpy_fast_path_equals_keras_trainer(keras_mod, spec):
    arch_name = spec.split("+")[0]
    arch, settings, trainer = randomised(spec)
    rng = np.random.default_rng(0)
    pieces = tune_pieces(rng)
    X, Y, W = arch.numpy().training_arrays(pieces, METRES, settings, V, 4, tx=40)
    assert W.shape == (3, 40) and W.min() == 1  # one whole chunk per piece: both start from zero state
    keras_probs = softmax(np.asarray(trainer(X), np.float64))
    weights = arch.keras().export_weights(trainer, CFG)
    # the shapes the folder check demands are those the Keras model exports
    assert {k: w.shape for k, w in weights.items()} == arch.numpy().weight_shapes(CFG, settings, V)
    st = arch.numpy().make_stepper(weights, CFG, settings, V)
    tunes = tunes_of(st, pieces)
    kw = {} if tunes is None else {"tunes": tunes}
    if arch_name == "lookback":
        labels, lb_tok = st.run_labels(X["ids"], METRES, **kw)
        np.testing.assert_allclose(softmax(labels.astype(np.float64)), keras_probs, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(lb_tok, X["lookback_ids"])
        keras_tokens = F.fold_repeats(keras_probs, X["lookback_ids"], V)
        assert Y.max() >= V  # repeat labels are trained
    else:
        keras_tokens = keras_probs
    tokens = softmax(st.run(X["ids"], METRES, **kw).astype(np.float64))
    np.testing.assert_allclose(tokens, keras_tokens, atol=1e-5, rtol=0)
    # step by step (generation's path) equals teacher-forced run for a batch in one metre
    st1 = arch.numpy().make_stepper(weights, CFG, settings, V, time_signature=(3, 8))
    if tunes is not None:
        with pytest.raises(OptionError, match="set_tune"):  # no silent default class
            st1.step(np.full(2, -1), st1.zero_state(2))
        st1.set_tune(tunes[1])
    ids = X["ids"][1:2].repeat(2, axis=0)
    state = st1.zero_state(2)
    for t in range(ids.shape[1]):
        logits, state = st1.step(ids[:, t], state)
        np.testing.assert_allclose(softmax(logits.astype(np.float64)), tokens[1:2, t].repeat(2, 0), atol=1e-5)
    # the metre is an input: the same tokens under another metre give other probabilities
    other = softmax(st.run(X["ids"], [[(0, 4, 4)]] * 3, **kw).astype(np.float64))
    assert np.abs(other - tokens).max() > 1e-3
    if tunes is not None:  # so are the tune classes
        flipped = [((r + 1) % 4, (k + 5) % 12, (c + 2) % 12) for r, k, c in tunes]
        other = softmax(st.run(X["ids"], METRES, tunes=flipped).astype(np.float64))
        assert np.abs(other - tokens).max() > 1e-3


@pytest.mark.parametrize("arch_name", ["lookback", "attention"])
def test_dropout_is_applied_in_training_only_and_adds_no_weights(keras_mod, arch_name):
    """--dropout used to be ignored silently by the lookback and attention trainers."""
    import dataclasses

    arch, settings, plain = randomised(arch_name)
    cfg = dataclasses.replace(CFG, dropout=0.5)
    dropped = arch.keras().build_trainer(cfg, settings, V, seed=1)
    weights = arch.keras().export_weights(plain, CFG)
    arch.keras().import_weights(dropped, cfg, weights)
    got = arch.keras().export_weights(dropped, cfg)
    assert set(got) == set(weights) and all(np.array_equal(got[k], weights[k]) for k in weights)
    X, _, _ = arch.numpy().training_arrays(tune_pieces(np.random.default_rng(0)), METRES, settings, V, 4, tx=40)
    want = np.asarray(plain(X))
    np.testing.assert_allclose(np.asarray(dropped(X, training=False)), want, atol=1e-6)
    assert np.abs(np.asarray(dropped(X, training=True)) - want).max() > 1e-3


@pytest.mark.slow  # builds a Ty-step Keras inference model and saves/loads it
@pytest.mark.parametrize("spec", SPECS)
def test_inference_model_equals_numpy_and_loads_safely(keras_mod, spec, tmp_path):
    arch, settings, trainer = randomised(spec, seed=SEEDS.get(spec, 2), scale=1.0)
    weights = arch.keras().export_weights(trainer, CFG)
    ty, ts, b = 20, (3, 4), 3
    inf = arch.keras().inference_model(weights, CFG, settings, V, Ty=ty, time_signature=ts)
    assert not any(isinstance(layer, keras_mod.layers.Lambda) for layer in inf.layers)
    ctx = settings.context(4)
    _, pos, cls = ctx.grid(ty, [(0, *ts)])
    tune = (0, 11, 6)[:len(ctx.tune)]
    rng = np.random.default_rng(0)
    inputs = [np.zeros((b, 1, V), np.float32), rng.normal(0, 0.5, (b, CFG.units)).astype(np.float32),
              rng.normal(0, 0.5, (b, CFG.units)).astype(np.float32),
              np.repeat(ctx.rows(pos, cls, tune)[None], b, axis=0)]
    doc = np.stack(inf.predict(inputs, verbose=0), axis=1)  # (b, Ty, V) token probabilities
    seq = doc.argmax(-1)
    assert len(np.unique(seq)) > 1
    st = arch.numpy().make_stepper(weights, CFG, settings, V, time_signature=ts)
    if ctx.tune:
        st.set_tune(tune)
    state = st.zero_state(b)
    state = (inputs[1], inputs[2], *state[2:])  # the same non-zero initial (h, c)
    x = np.full(b, -1)
    for t in range(ty):
        logits, state = st.step(x, state)
        np.testing.assert_allclose(softmax(logits.astype(np.float64)), doc[:, t], atol=1e-5, rtol=0)
        x = seq[:, t]  # teacher-forced on the inference model's own choices
    inf.save(tmp_path / "inf.keras")
    back = keras_mod.saving.load_model(tmp_path / "inf.keras", safe_mode=True)
    np.testing.assert_allclose(np.stack(back.predict(inputs, verbose=0), 1), doc, atol=1e-6)


# --- training from a corpus, fine-tuning, generation in another metre (slow) ----------------------------------------
def write_tunes(folder, rng, n=10):
    """AABB-like tunes as MIDI files, half in 4/4 and half in 6/8: bar k repeats bar k - 2 (phrase repeats)."""
    from app.music.melody import Melody
    from app.music.midi_io import write_midi

    folder.mkdir()
    for k in range(n):
        ts = (4, 4) if k % 2 else (6, 8)
        bar = 16 if ts == (4, 4) else 12
        a = [(int(60 + rng.choice([0, 2, 4, 5, 7, 9])), s, s + 2) for s in range(0, bar, 2)]
        b = [(int(60 + rng.choice([0, 2, 4, 5, 7, 9])), s, s + 4) for s in range(0, bar, 4)]
        notes = []
        for rep in range(4):
            for j, part in enumerate((a, b)):
                off = (2 * rep + j) * bar
                notes += [(p, s + off, e + off) for p, s, e in part]
        write_midi(Melody.from_notes(notes, qpm=100.0, time_signature=ts), folder / f"tune{k:02d}.mid")


def check_tune_draws(path):
    """A tune-conditioned model: seeded draws repeat, a long primer gives its own classes, --key sets the scale
    class, and each melody is what its class's batch generates."""
    from app.music.generate import MelodyGenerator
    from app.music.sampler import MelodyOptions, generate_ids

    gen = MelodyGenerator.load(path)
    opts = MelodyOptions(n=8, steps=32, seed=3)
    draws = gen.tune_classes_for(opts, None, (4, 4))
    assert draws == gen.tune_classes_for(opts, None, (4, 4)) and all(len(d) == 3 for d in draws)
    low = int(gen.note_pitch[F.FIRST_NOTE_ID])
    want = (2 - low) % 12  # D major's collection, counted from the vocabulary's lowest pitch
    keyed = gen.tune_classes_for(MelodyOptions(n=20, steps=8, seed=1, key="D"), None, (4, 4))
    assert {d[1] for d in keyed} == {want} and {d[2] for d in keyed} == {0}  # D major: the collection's tonic
    keyed = gen.tune_classes_for(MelodyOptions(n=20, steps=8, seed=1, key="E dorian"), None, (4, 4))
    assert {d[1:] for d in keyed} == {(want, 2)}  # E dorian: D's collection, centred a tone above D
    primer = np.array([F.FIRST_NOTE_ID + 4, 0, 0, F.FIRST_NOTE_ID + 2] * 4, np.int64)  # 8 dotted notes
    assert set(gen.tune_classes_for(opts, primer, (4, 4))) == {(3, F.scale_class(primer), F.tonic_class(primer))}
    ids = gen.generate_ids(opts)
    first = draws[0]
    rows = [i for i, d in enumerate(draws) if d == first]
    g = sorted(set(draws)).index(first)
    gen.stepper.set_tune(first)
    alone = generate_ids(gen.stepper, gen.note_pitch, MelodyOptions(n=len(rows), steps=32, seed=3 + g))
    np.testing.assert_array_equal(ids[rows], alone)


@pytest.mark.slow
def test_each_arch_trains_fine_tunes_and_generates_from_a_midi_corpus(keras_mod, tmp_path, capsys):
    import pretty_midi

    from app.cli import main
    from app.core.folder import load_model_folder

    write_tunes(tmp_path / "midi", np.random.default_rng(0))
    assert main(["music", "corpus", "--source", str(tmp_path / "midi"), "--out", str(tmp_path / "c"), "--jobs",
                 "1", "--quiet"]) == 0
    common = ["--corpus", str(tmp_path / "c"), "--units", "8", "--tx", "64", "--batch-size", "8", "--quiet",
              "--no-baselines", "--logdir", str(tmp_path / "tb")]
    flags = {"basic": [], "lookback": ["--lookbacks", "1,2,4"], "attention": ["--attn-length", "8"],
             "lookback+tunes": ["--lookbacks", "1,2,4", "--tune-classes", "rhythm,scale,tonic"]}
    for name, extra in flags.items():
        out, arch_name = tmp_path / name, name.split("+")[0]
        assert main(["music", "train", "--arch", arch_name, *extra, "--out", str(out), "--epochs", "1",
                     *common]) == 0
        folder = load_model_folder(out, domain="music")
        assert folder.config["arch"]["name"] == arch_name and folder.card["arch"]["name"] == arch_name
        if arch_name == "lookback":
            assert folder.config["arch"]["settings"]["lookbacks"] == [1, 2, 4]
        if name == "lookback+tunes":  # the training tunes' classes per metre: eighths (class 0) in C major
            assert folder.config["arch"]["settings"]["tune_classes"] == ["rhythm", "scale", "tonic"]
            prior = folder.config["arch"]["tune_prior"]
            assert set(prior) == {"4/4", "6/8"} and all(r[0] == 0 for rows in prior.values() for r in rows)
            check_tune_draws(out)
        # fine-tuning the same arch works (acceptance 7) and keeps its settings
        assert main(["music", "train", "--from", str(out), "--out", str(out) + "_ft", "--epochs", "1",
                     *common]) == 0
        assert load_model_folder(str(out) + "_ft").config["arch"] == folder.config["arch"]
        capsys.readouterr()
        # 6/8 output: the MIDI carries the metre, 2 bars are 24 steps
        for ts, steps in (("6/8", 24), ("3/4", 24), ("4/4", 32)):
            res_dir = tmp_path / f"gen_{name}_{ts[0]}"
            assert main(["music", "generate", "--model", str(out), "--time-signature", ts, "--bars", "2",
                         "--seed", "1", "--key", "C", "--no-wav", "--no-png", "--json", "--out-dir",
                         str(res_dir)]) == 0
            res = json.loads(capsys.readouterr().out)[0]
            assert res["steps"] == steps
            pm = pretty_midi.PrettyMIDI(res["mid"])
            sig = pm.time_signature_changes[0]
            assert (sig.numerator, sig.denominator) == tuple(int(v) for v in ts.split("/"))
            # bar lines every steps / 2 grid steps (12 for 3/4 and 6/8): downbeats 0 and one bar later
            step_s = 60.0 / pm.get_tempo_changes()[1][0] / 4
            np.testing.assert_allclose(pm.get_downbeats()[:2], [0.0, steps / 2 * step_s], atol=1e-6)
        assert main(["music", "generate", "--model", str(out), "--beam", "3", "--primer", "60 62", "--bars", "1",
                     "--no-wav", "--no-png", "--out-dir", str(tmp_path / f"beam_{name}")]) == 0
        capsys.readouterr()
        assert main(["music", "evaluate", "--model", str(out), "--corpus", str(tmp_path / "c"), "--json",
                     "--no-baselines"]) == 0
        m = json.loads(capsys.readouterr().out)["model_metrics"]
        assert np.isfinite(m["nll_nats_per_step"])
        if name == "lookback+tunes":  # given the classes, the NLL leaves out their cost: reported beside it
            assert m["tune_classes_nats_per_step"] > 0
            assert m["nll_with_tune_classes"] == pytest.approx(m["nll_nats_per_step"] + m["tune_classes_nats_per_step"])
        else:
            assert "nll_with_tune_classes" not in m
    # another arch on top of a basic model is a clear error (exit 2, one line)
    capsys.readouterr()
    assert main(["music", "train", "--arch", "lookback", "--from", str(tmp_path / "basic"), "--out",
                 str(tmp_path / "x"), "--epochs", "1", *common]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "it is a 'basic' model" in err and not (tmp_path / "x").exists()
    assert main(["music", "train", "--lookbacks", "1,2", "--out", str(tmp_path / "y"), *common]) == 2
    assert "need --arch" in capsys.readouterr().err


# --- generation options on every arch (numpy only) -----------------------------------------------------------------
def numpy_weights(arch_name, settings, rng, units=8, vocab=V):
    """Random weights of the right shapes, without Keras."""
    from tests.music_fixtures import arch_shapes

    shapes = arch_shapes(arch_name, settings, units, vocab)
    return {k: rng.normal(0, 1.0, s).astype(np.float32) for k, s in shapes.items()}


@pytest.mark.parametrize("arch_name", ["basic", "lookback", "attention"])
def test_key_range_primer_and_beam_work_for_every_arch(arch_name):
    from app.core.sampling import SamplingOptions
    from app.music.codec import MelodyCodec
    from app.music.generate import note_pitches
    from app.music.melody import Melody
    from app.music.sampler import MelodyOptions, generate_ids

    codec = MelodyCodec(60, 72)
    arch = get_arch(arch_name)
    settings = arch.make_settings(SMALL.get(arch_name, {}))
    weights = numpy_weights(arch_name, settings, np.random.default_rng(3), vocab=codec.size)
    st = arch.numpy().make_stepper(weights, CFG, settings, codec.size, time_signature=(6, 8))
    pitches = note_pitches(codec)
    primer = codec.encode(Melody.from_notes([(64, 0, 4), (67, 4, 8)]))
    for opts in (MelodyOptions(n=4, steps=48, seed=0, key="C", min_pitch=62, max_pitch=69,
                               sampling=SamplingOptions(temperature=1.5)),
                 MelodyOptions(n=2, steps=24, beam=3, key="C", min_pitch=62, max_pitch=69)):
        ids = generate_ids(st, pitches, opts, primer)
        assert ids.shape == (opts.n, len(primer) + opts.steps)
        np.testing.assert_array_equal(ids[:, :len(primer)], np.broadcast_to(primer, (opts.n, len(primer))))
        new = pitches[ids[:, len(primer):]]
        played = new[new >= 0]
        assert played.size and set(played % 12) <= {0, 2, 4, 5, 7, 9, 11} and 62 <= played.min() <= played.max() <= 69
    # same seed, same melodies
    o = MelodyOptions(n=2, steps=32, seed=5)
    np.testing.assert_array_equal(generate_ids(st, pitches, o), generate_ids(st, pitches, o))

"""Music training: data layout, evaluation convention, checkpoint/interrupt/resume, fine-tuning, vocab mapping,
and (integration) retraining on MIDI files written from music21's Bach chorales."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.core.folder import load_model_folder
from app.core.metrics import masked_nll
from app.core.modelconfig import ModelConfig, TrainConfig
from app.core.stepper import NumpyStepper
from app.errors import ModelFolderError, OptionError
from app.music.codec import MelodyCodec
from app.music.train import MusicData, evaluate_pieces, map_vocab, sequence_chunks
from tests.music_fixtures import pattern_pieces

pytestmark = pytest.mark.slow  # trains models

ROOT = Path(__file__).resolve().parents[1]
TINY = ModelConfig(cell="lstm", units=8, layers=1, input="onehot")
FAST = TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, lr_decay=1.0, patience=5, seed=0)


def data_for(codec: MelodyCodec, seed: int = 0) -> MusicData:
    return MusicData(train=pattern_pieces(codec, 40, seed), val=pattern_pieces(codec, 8, seed + 1),
                     vocab=codec.vocab, source={"path": "synthetic"},
                     codec={"min_pitch": codec.min_pitch, "max_pitch": codec.max_pitch, "steps_per_quarter": 4,
                            "time_signature": [4, 4], "qpm": 120.0})


def test_sequence_chunks_layout():
    a, b = np.array([5, 6, 7, 8, 9]), np.array([3, 4, 2])
    x, y, w = sequence_chunks([a, b], 4)
    np.testing.assert_array_equal(x, [[-1, 5, 6, 7], [8, 0, 0, 0], [-1, 3, 4, 0]])
    np.testing.assert_array_equal(y, [[5, 6, 7, 8], [9, 0, 0, 0], [3, 4, 2, 0]])
    np.testing.assert_array_equal(w, [[1, 1, 1, 1], [1, 0, 0, 0], [1, 1, 1, 0]])
    with pytest.raises(OptionError, match="tx"):
        sequence_chunks([a], 0)


def test_evaluate_pieces_scores_the_ngram_tokens():
    rng = np.random.default_rng(0)
    v, u = 7, 5
    w = {"rnn_0/kernel": rng.normal(size=(v, 4 * u)), "rnn_0/recurrent_kernel": rng.normal(size=(u, 4 * u)),
         "rnn_0/bias": rng.normal(size=4 * u), "head/kernel": rng.normal(size=(u, v)), "head/bias": rng.normal(size=v)}
    st = NumpyStepper(w, ModelConfig(units=u), v)
    pieces = [rng.integers(0, v, n) for n in (6, 3, 9, 1)]
    got = evaluate_pieces(st, pieces, batch=2)
    # reference: one piece at a time, scoring s1..sn
    total, count, correct = 0.0, 0, 0
    for p in pieces[:3]:
        logits = st.run(np.concatenate([[-1], p[:-1]])[None])[0]
        nll, n = masked_nll(logits[None, 1:], p[None, 1:], np.ones((1, len(p) - 1)))
        total += nll * n
        count += n
        correct += int((logits[1:].argmax(-1) == p[1:]).sum())
    assert got["steps"] == count == 5 + 2 + 8 and got["pieces"] == 3
    assert got["nll_nats_per_step"] == pytest.approx(total / count, rel=1e-6)
    assert got["accuracy"] == pytest.approx(correct / count)
    assert got["perplexity"] == pytest.approx(np.exp(total / count), rel=1e-6)


def test_map_vocab():
    model = MelodyCodec(60, 72).vocab
    assert map_vocab(model, model) is None
    idmap = map_vocab(MelodyCodec(62, 65).vocab, model)
    np.testing.assert_array_equal(idmap, [0, 1, 4, 5, 6, 7])  # hold, rest, 62..65
    with pytest.raises(ModelFolderError, match="does not know: 50"):
        map_vocab(MelodyCodec(50, 70).vocab, model)


@pytest.fixture(scope="module")
def keras_train():
    pytest.importorskip("keras")
    from app.core.model import export_weights
    from app.core.train import EpochHook
    from app.music.train import train_music

    return train_music, EpochHook, export_weights


def start_weights_hook(store: dict):
    """A Keras callback that records the weights the model has when fit starts."""
    import keras

    from app.core.model import export_weights

    class Start(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            store["w"] = export_weights(self.model, store["cfg"])

    return Start()


def test_interrupt_then_resume(keras_train, tmp_path):
    train_music, EpochHook, export_weights = keras_train
    codec = MelodyCodec(60, 72)
    data = data_for(codec)
    out = tmp_path / "m"

    def stop(epoch, logs):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_music(data, out, TINY, FAST, tx=16, progress=False, baselines=False, hooks=[EpochHook(stop)])
    saved = load_model_folder(out, domain="music")
    assert saved.card["status"] == "training" and saved.card["epochs_done"] == 1
    assert len(saved.card["history"]["loss"]) == 1

    store = {"cfg": TINY}
    card = train_music(data, out, TINY, FAST, resume=True, progress=False, log_dir=tmp_path / "tb",
                       hooks=[start_weights_hook(store)])
    for k, v in saved.weights.items():  # the resumed run starts from the checkpoint
        np.testing.assert_array_equal(store["w"][k], v)
    assert card["status"] == "done" and card["epochs_done"] == 2
    assert card["history"]["loss"][0] == saved.card["history"]["loss"][0]
    assert card["train"]["tx"] == 16
    done = load_model_folder(out, domain="music")
    assert done.card == json.loads((out / "card.json").read_text())
    m = card["metrics"]["validation"]
    assert np.isfinite(m["nll_nats_per_step"]) and 0 <= m["accuracy"] <= 1
    assert {r["order"] for r in card["metrics"]["baselines"]} == {1, 2, 3, 5}
    assert card["data"]["train_pieces"] == 40 and len(card["data"]["tokens_sha256"]) == 64
    assert card["schema"] == 2 and card["domain"] == "music" and card["versions"]["tensorflow"]
    # model.keras (safe_mode) and weights.npz hold the same weights, and numpy metrics match the card
    km = done.keras_model()
    for k, v in export_weights(km, done.model_config).items():
        np.testing.assert_array_equal(v, done.weights[k])
    assert evaluate_pieces(done.stepper(), data.val)["nll_nats_per_step"] == pytest.approx(m["nll_nats_per_step"])
    assert any((tmp_path / "tb").rglob("events.out.tfevents*"))  # TensorBoard logs
    with pytest.raises(OptionError, match="already run 2 epochs"):
        train_music(data, out, TINY, FAST, resume=True, progress=False)


def test_fine_tune_maps_vocab_and_starts_from_parent(keras_train, tmp_path):
    train_music, _, _ = keras_train
    parent_codec = MelodyCodec(60, 72)
    gru = ModelConfig(cell="gru", units=8, layers=1, input="onehot")  # --cell gru works end to end too
    one = TrainConfig(**{**FAST.__dict__, "epochs": 1})
    train_music(data_for(parent_codec), tmp_path / "parent", gru, one, tx=16, progress=False, baselines=False)
    parent = load_model_folder(tmp_path / "parent")

    small = MelodyCodec(62, 68)  # a corpus whose vocabulary is a subset: mapped onto the parent's
    store = {"cfg": gru}
    card = train_music(data_for(small, seed=5), tmp_path / "child", TINY, one, tx=16, from_model=tmp_path / "parent",
                       progress=False, baselines=False, hooks=[start_weights_hook(store)])
    for k, v in parent.weights.items():
        np.testing.assert_array_equal(store["w"][k], v)
    child = load_model_folder(tmp_path / "child")
    assert child.vocab.tokens == parent.vocab.tokens and child.model_config.cell == "gru"
    assert card["fine_tuned_from"]["path"] == str(tmp_path / "parent")
    assert child.config["codec"]["min_pitch"] == 60

    with pytest.raises(ModelFolderError, match="does not know"):
        train_music(data_for(MelodyCodec(48, 72)), tmp_path / "bad", TINY, one, from_model=tmp_path / "parent",
                    progress=False)
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ModelFolderError, match="does not exist"):
        train_music(data_for(small), tmp_path / "x", TINY, one, from_model=tmp_path / "missing", progress=False)
    with pytest.raises(ModelFolderError, match="cannot resume"):
        train_music(data_for(small), tmp_path / "never", TINY, one, resume=True, progress=False)
    with pytest.raises(OptionError, match="either"):
        train_music(data_for(small), tmp_path / "child", TINY, one, resume=True, from_model=tmp_path / "parent")


def _bench_module():
    spec = importlib.util.spec_from_file_location("bench_music", ROOT / "bench" / "music.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(not (ROOT / "models" / "folk" / "weights.npz").exists(), reason="models/folk not trained here")
def test_retrain_on_a_midi_folder_end_to_end(tmp_path):
    """Bach chorale soprano lines (not in the default corpus) -> MIDI folder -> corpus -> fine-tune folk -> generate."""
    pytest.importorskip("music21")
    bench = _bench_module()
    midi_dir = tmp_path / "chorales"
    written = bench.write_chorale_midis(midi_dir, limit=8)
    assert len(written) == 8 and all(p.suffix == ".mid" for p in written)
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def app(*args):
        p = subprocess.run([sys.executable, "-m", "app", "music", *args], cwd=ROOT, env=env, capture_output=True,
                           text=True, timeout=600)
        assert p.returncode == 0, p.stderr[-2000:]
        return p

    app("corpus", "--source", str(midi_dir), "--out", str(tmp_path / "corpus"), "--jobs", "1", "--quiet")
    app("train", "--corpus", str(tmp_path / "corpus"), "--from", str(ROOT / "models" / "folk"), "--epochs", "2",
        "--out", str(tmp_path / "bach"), "--no-baselines", "--quiet", "--logdir", str(tmp_path / "tb"))
    card = json.loads((tmp_path / "bach" / "card.json").read_text())
    assert card["status"] == "done" and card["epochs_done"] >= 1
    assert card["fine_tuned_from"]["name"] == "folk"
    p = app("generate", "--model", str(tmp_path / "bach"), "--bars", "2", "--seed", "1", "--out-dir",
            str(tmp_path / "out"))
    from tests.music_fixtures import default_generate_suffixes

    assert {f.suffix for f in (tmp_path / "out").iterdir()} == default_generate_suffixes(env)
    assert "notes" in p.stderr


def test_cli_train_evaluate_and_vocab_mismatch(tmp_path, capsys):
    """MIDI files written in code -> corpus -> `music train` -> `music evaluate`; a corpus whose vocabulary the
    model lacks is a one-line error (exit 2) for both --from and evaluate."""
    pytest.importorskip("keras")
    from app.cli import main
    from app.music.melody import Melody
    from app.music.midi_io import write_midi

    rng = np.random.default_rng(0)
    midi = tmp_path / "midi"
    midi.mkdir()
    for k in range(12):
        pitches = 60 + rng.choice([0, 2, 4, 5, 7, 9, 11, 12], size=16)
        notes = [(int(p), 4 * i, 4 * i + 3) for i, p in enumerate(pitches)]
        write_midi(Melody.from_notes(notes, qpm=100.0), midi / f"tune{k:02d}.mid")
    assert main(["music", "corpus", "--source", str(midi), "--out", str(tmp_path / "a"), "--jobs", "1",
                 "--quiet"]) == 0
    assert main(["music", "corpus", "--source", str(midi), "--out", str(tmp_path / "b"), "--jobs", "1", "--quiet",
                 "--min-pitch", "30"]) == 0
    capsys.readouterr()
    rc = main(["music", "train", "--corpus", str(tmp_path / "a"), "--out", str(tmp_path / "m"), "--units", "8",
               "--tx", "32", "--epochs", "1", "--batch-size", "8", "--quiet", "--logdir", str(tmp_path / "tb")])
    assert rc == 0
    assert "saved" in capsys.readouterr().out
    assert main(["music", "evaluate", "--model", str(tmp_path / "m"), "--corpus", str(tmp_path / "a")]) == 0
    text = capsys.readouterr().out
    assert "LSTM model" in text and "interpolated 1-5-gram" in text and "bigram" in text
    assert main(["music", "evaluate", "--model", str(tmp_path / "m"), "--corpus", str(tmp_path / "a"),
                 "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["model_metrics"]["steps"] == sum(r["tokens"] for r in rep["baselines"]) / 4  # same tokens
    for args in (["train", "--corpus", str(tmp_path / "b"), "--from", str(tmp_path / "m"), "--out",
                  str(tmp_path / "m2"), "--quiet"],
                 ["evaluate", "--model", str(tmp_path / "m"), "--corpus", str(tmp_path / "b")]):
        assert main(["music", *args]) == 2
        last = capsys.readouterr().err.strip().splitlines()[-1]  # the one-line error
        assert last.startswith("error:") and "does not know" in last
    assert main(["music", "generate", "--model", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_attention_refuses_recurrent_dropout(tmp_path):
    """Its cell is our own and has no recurrent dropout: asking for it is an error, not a silent no-op."""
    import dataclasses

    from app.music.codec import MelodyCodec
    from app.music.train import train_music

    with pytest.raises(OptionError, match="no recurrent dropout"):
        train_music(data_for(MelodyCodec(60, 72)), tmp_path / "m", dataclasses.replace(TINY, recurrent_dropout=0.2),
                    FAST, arch="attention", progress=False, baselines=False)
    assert not (tmp_path / "m").exists()


def test_resume_keeps_the_runs_batch_size_and_schedule(keras_train, tmp_path):
    """Adam's restored iteration count drives the per-epoch learning-rate decay, so resuming at another batch size
    decayed the rate at another pace (a chorale run resumed at batch 32 after batch 8 stopped learning). The API
    refuses it, and the CLI takes the run's own settings unless a flag replaces them."""
    import dataclasses

    from app.music.codec import MelodyCodec
    from app.music.model_cli import resumed_train_config

    train_music, _, _ = keras_train
    data = data_for(MelodyCodec(60, 72))
    out = tmp_path / "m"
    train_music(data, out, TINY, FAST, tx=16, progress=False, baselines=False)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    more = dataclasses.replace(FAST, epochs=3)
    with pytest.raises(OptionError, match=r"--batch-size 32 \(the run used 16\)"):
        train_music(data, out, TINY, dataclasses.replace(more, batch_size=32), resume=True, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before  # nothing written
    base = TrainConfig(batch_size=32, learning_rate=3e-3, epochs=9)
    got = resumed_train_config(out, base)
    assert (got.batch_size, got.learning_rate, got.lr_decay, got.epochs) == (16, FAST.learning_rate, FAST.lr_decay,
                                                                           FAST.epochs)
    assert resumed_train_config(tmp_path / "missing", base) == base  # train_music then says why it cannot resume
    card = train_music(data, out, TINY, dataclasses.replace(got, epochs=3), resume=True, progress=False,
                       baselines=False)
    assert card["epochs_done"] == 3 and card["train"]["batch_size"] == 16

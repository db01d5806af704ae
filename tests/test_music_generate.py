"""`music generate`: model folder -> .mid + .wav + .png, never overwriting; synthesisers; primers; bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.errors import DataError, ModelFolderError, OptionError
from app.music import synth
from app.music.codec import MelodyCodec
from app.music.generate import generate_files
from app.music.melody import Melody
from app.music.midi_io import write_midi

ROOT = Path(__file__).resolve().parents[1]
CODEC_META = {"min_pitch": 55, "max_pitch": 79, "steps_per_quarter": 4, "time_signature": [3, 4], "qpm": 100.0}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random-weight melody model folder (vocabulary hold, rest, 55..79; 3/4 time), written without
    TensorFlow: generation reads only weights.npz, so model.keras is a placeholder here."""
    import json

    from app.core.folder import FORMAT_VERSION

    codec = MelodyCodec(55, 79)
    u, v = 12, codec.size
    rng = np.random.default_rng(0)
    w = {"rnn_0/kernel": rng.normal(0, 1.0, (v, 4 * u)), "rnn_0/recurrent_kernel": rng.normal(0, 1.0, (u, 4 * u)),
         "rnn_0/bias": rng.normal(0, 1.0, 4 * u), "head/kernel": rng.normal(0, 1.0, (u, v)),
         "head/bias": rng.normal(0, 1.0, v)}
    w["head/bias"][2:] += 1.0  # favour note-ons a little so short melodies have notes
    path = tmp_path_factory.mktemp("models") / "tiny"
    path.mkdir()
    np.savez(path / "weights.npz", **{k: a.astype(np.float32) for k, a in w.items()})
    codec.vocab.save(path / "vocab.json")
    model = {"cell": "lstm", "units": u, "layers": 1, "input": "onehot"}
    (path / "config.json").write_text(json.dumps({"format": FORMAT_VERSION, "domain": "music", "model": model,
                                                  "train": {}, "codec": CODEC_META}))
    (path / "card.json").write_text(json.dumps({"name": "tiny"}))
    (path / "model.keras").write_bytes(b"placeholder: these tests never load model.keras")
    return path


def req(model, out, primer_pitches=None, **kw):
    return dict(model=model, out_dir=out, primer=primer_pitches, **kw)


def generate(kw):
    return generate_files(**kw)


@pytest.mark.slow
def test_generate_writes_mid_wav_png_and_never_overwrites(tiny_model, tmp_path):
    import pretty_midi

    out = tmp_path / "music"
    res = generate(req(tiny_model, out, n=2, bars=2, seed=1, qpm=90, program=40))
    assert len(res) == 2
    for r in res:
        mid, wav, png = Path(r["mid"]), Path(r["wav"]), Path(r["png"])
        assert mid.parent == out and mid.stem == wav.stem == png.stem
        assert r["steps"] == 2 * 12  # 3/4 at 4 steps per quarter: 12 steps per bar
        pm = pretty_midi.PrettyMIDI(str(mid))
        assert [i.program for i in pm.instruments] == [40]
        assert pm.get_tempo_changes()[1][0] == pytest.approx(90, rel=1e-4)
        melody = MelodyCodec(55, 79).decode(r["ids"], steps_per_quarter=4, qpm=90)
        step_s = 60 / (90 * 4)
        got = [(n.pitch, round(n.start / step_s), round(n.end / step_s)) for n in pm.instruments[0].notes]
        assert got == melody.notes() and len(got) == r["notes"] > 0
        samples, rate = synth.read_wav(wav)
        assert synth.rms(samples) > 1e-3  # never silent
        assert len(samples) / rate >= melody.notes()[-1][2] * step_s * 0.95
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert res[0]["ids"] != res[1]["ids"]
    before = {p: p.read_bytes() for p in out.iterdir()}
    again = generate(req(tiny_model, out, n=2, bars=2, seed=1, qpm=90, program=40))
    assert {Path(r["mid"]) for r in again}.isdisjoint(before)  # new names
    assert again[0]["ids"] == res[0]["ids"]  # same seed, same melody
    for p, data in before.items():
        assert p.read_bytes() == data  # nothing overwritten


def test_builtin_synth_plays_the_right_pitch_with_envelopes():
    rate = synth.SAMPLE_RATE
    s = synth.synthesize([(69, 0.0, 1.0, 100)], rate)
    assert s.dtype == np.float32 and abs(np.abs(s).max() - synth.PEAK) < 1e-6
    spec = np.abs(np.fft.rfft(s[: rate]))
    freqs = np.fft.rfftfreq(rate, 1 / rate)
    assert abs(freqs[spec.argmax()] - 440.0) < 2.0
    assert abs(s[0]) < 0.01 and np.abs(s[-50:]).max() < 0.01  # attack from 0, release to 0: no clicks
    two = synth.synthesize([(60, 0.0, 0.5, 90), (72, 0.5, 1.0, 90)], rate)
    first, second = np.fft.rfft(two[: rate // 2]), np.fft.rfft(two[rate // 2: rate])
    f = np.fft.rfftfreq(rate // 2, 1 / rate)
    assert abs(f[np.abs(first).argmax()] - 261.6) < 3 and abs(f[np.abs(second).argmax()] - 523.3) < 3
    with pytest.raises(DataError, match="no notes"):
        synth.synthesize([])


def test_wav_round_trip_and_fallback_when_fluidsynth_fails(tmp_path, monkeypatch):
    notes = [(60, 0.0, 0.25, 90), (64, 0.25, 0.5, 90)]
    mid = tmp_path / "m.mid"
    write_midi(Melody.from_notes([(60, 0, 2), (64, 2, 4)], qpm=120.0), mid)
    monkeypatch.setattr(synth, "fluidsynth_available", lambda: ("/bin/false", "/nonexistent.sf2"))
    engine = synth.write_wav(notes, tmp_path / "a.wav", mid)
    assert engine == "builtin"
    samples, rate = synth.read_wav(tmp_path / "a.wav")
    assert rate == synth.SAMPLE_RATE and synth.rms(samples) > 1e-3
    np.testing.assert_allclose(samples[:, 0], synth.synthesize(notes), atol=2 / 32767)


@pytest.mark.slow
@pytest.mark.skipif(synth.fluidsynth_available() is None, reason="fluidsynth or the GM SoundFont is not installed")
def test_fluidsynth_renders_non_silent_wav(tmp_path):
    mid = tmp_path / "m.mid"
    write_midi(Melody.from_notes([(60, 0, 4), (67, 4, 8)], qpm=120.0, program=73), mid)
    engine = synth.write_wav([(60, 0.0, 0.5, 90), (67, 0.5, 1.0, 90)], tmp_path / "f.wav", mid)
    assert engine == "fluidsynth"
    samples, rate = synth.read_wav(tmp_path / "f.wav")
    assert rate == 44100 and synth.rms(samples) > 1e-3 and len(samples) > 0.9 * rate


def test_primer_pitches_are_continued(tiny_model, tmp_path):
    import pretty_midi

    (r,) = generate(req(tiny_model, tmp_path, primer_pitches="60 62 64", steps=8, seed=0, wav=False))
    assert r["primer_steps"] == 12 and r["steps"] == 20
    notes = pretty_midi.PrettyMIDI(r["mid"]).instruments[0].notes
    assert [n.pitch for n in notes[:2]] == [60, 62]
    assert notes[2].pitch == 64 and notes[2].start == pytest.approx(1.0)  # quarter notes at 120 qpm
    assert Path(r["png"]).exists() and "wav" not in r


def test_primer_midi_is_continued(tiny_model, tmp_path):
    codec = MelodyCodec(55, 79)
    primer = Melody.from_notes([(67, 0, 4), (69, 4, 6), (71, 6, 8), (72, 8, 16)], qpm=100.0)
    write_midi(primer, tmp_path / "p.mid")
    (r,) = generate(req(tiny_model, tmp_path / "o", primer_midi=tmp_path / "p.mid", steps=6, seed=2, wav=False,
                        png=False))
    np.testing.assert_array_equal(r["ids"][:16], codec.encode(primer))
    assert r["steps"] == 22


def test_bad_primers(tiny_model, tmp_path):
    with pytest.raises(OptionError, match=r"outside the model's range 55..79"):
        generate(req(tiny_model, tmp_path, primer_pitches="30 60"))
    with pytest.raises(OptionError, match="pitch numbers"):
        generate(req(tiny_model, tmp_path, primer_pitches="C D E"))
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=90, pitch=38, start=0, end=0.5))
    pm.instruments.append(drums)
    pm.write(str(tmp_path / "drums.mid"))
    with pytest.raises(DataError, match="drums.mid"):
        generate(req(tiny_model, tmp_path, primer_midi=tmp_path / "drums.mid"))
    with pytest.raises(DataError, match="does not exist"):
        generate(req(tiny_model, tmp_path, primer_midi=tmp_path / "missing.mid"))


@pytest.mark.parametrize("kw,match", [
    ({"bars": 0}, "bars"), ({"bars": 100000}, "bars"), ({"steps": -1}, "steps"), ({"steps": 5000}, "steps"),
    ({"bars": 2, "steps": 8}, "either"), ({"key": "H minor"}, "unknown key"), ({"qpm": 0}, "qpm"),
    ({"program": 128}, "program"), ({"n": 0}, r"n \(number of melodies\) must be in"),
])
def test_bad_options(tiny_model, tmp_path, kw, match):
    with pytest.raises(OptionError, match=match):
        generate(req(tiny_model, tmp_path, **kw))
    assert not any(tmp_path.iterdir())  # nothing written on bad input


def test_unknown_model_folder(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        generate(req(tmp_path / "nope", tmp_path))


@pytest.mark.slow
def test_cli_generates_without_tensorflow(tiny_model, tmp_path):
    code = ("import sys; from app.cli import main; rc = main(sys.argv[1:]); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'; sys.exit(rc)")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = ["music", "generate", "--model", str(tiny_model), "-n", "1", "--bars", "1", "--seed", "3",
            "--key", "G", "--temperature", "0.8", "--out-dir", str(tmp_path)]
    p = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    from tests.music_fixtures import default_generate_suffixes

    assert {f.suffix for f in tmp_path.iterdir()} == default_generate_suffixes(env)
    bad = subprocess.run([sys.executable, "-m", "app", *args[:-2], "--out-dir", str(tmp_path / "x"),
                          "--temperature", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "temperature" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_generate_falls_back_to_builtin_synth_when_fluidsynth_fails(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setattr(synth, "fluidsynth_available", lambda: ("/bin/false", "/nonexistent.sf2"))
    res = generate(req(tiny_model, tmp_path, n=2, bars=1, seed=4, png=False))
    assert [r["synth"] for r in res] == ["builtin", "builtin"]
    for r in res:
        assert synth.rms(synth.read_wav(r["wav"])[0]) > 1e-3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left behind


@pytest.mark.slow
@pytest.mark.skipif(synth.fluidsynth_available() is None, reason="fluidsynth or the GM SoundFont is not installed")
def test_generate_uses_fluidsynth_when_installed(tiny_model, tmp_path):
    res = generate(req(tiny_model, tmp_path, n=2, bars=1, seed=4))
    assert [r["synth"] for r in res] == ["fluidsynth", "fluidsynth"]
    assert all(synth.read_wav(r["wav"])[1] == 44100 for r in res)
    (b,) = generate(req(tiny_model, tmp_path / "b", bars=1, seed=4, synth="builtin"))
    assert b["synth"] == "builtin"

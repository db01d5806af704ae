"""Poly models end to end (issue 14, acceptance 5 and 6): one command per stage on a piano folder built in code,
the model folder records its mode, generation writes chords and obeys key/range for every note, and the numpy
fast path equals the Keras models (teacher-forced, within 1e-5)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.cli import main as cli_main
from app.music.generate import MelodyGenerator
from app.music.polycodec import PolyCodec
from app.music.polygen import GeneratedPiece, generate_poly_ids
from app.music.sampler import MelodyOptions
from app.core.sampling import SamplingOptions
from tests.music_fixtures import midi_bytes, write


def piano_folder(root, n=8):
    """Chord progressions (C F G C, 4 beats each) under a quarter-note melody, right and left hand tracks."""
    rng = np.random.default_rng(0)
    chords = [(60, 64, 67), (60, 65, 69), (59, 62, 67), (60, 64, 67)]
    for k in range(n):
        rh, lh = [], []
        for bar in range(8):
            ch = chords[bar % 4]
            lh += [(ch[0] - 12, bar * 4.0, bar * 4.0 + 4.0)]
            rh += [(p, bar * 4.0, bar * 4.0 + 2.0) for p in ch]
            rh += [(int(rng.choice(ch)) + 12, bar * 4.0 + q, bar * 4.0 + q + 1.0) for q in range(4)]
        write(root, f"piece{k}.mid", midi_bytes([{"notes": rh, "name": "RH"}, {"notes": lh, "name": "LH"}]))
    return root


class FakeStepper:
    """Uniform logits: shows what the grammar mask alone allows."""

    def __init__(self, V):
        self.vocab_size = V

    def zero_state(self, b):
        return None

    def step(self, x, state):
        return np.zeros((len(x), self.vocab_size)), state


def test_sampler_grammar_key_and_range_hold_for_every_note():
    codec = PolyCodec(36, 84)
    opts = MelodyOptions(n=6, steps=64, key="D", min_pitch=50, max_pitch=74, seed=3,
                         sampling=SamplingOptions(temperature=1.0))
    rows = generate_poly_ids(FakeStepper(codec.size), codec, opts, max_voices=4)
    from app.music.scales import pitch_mask

    for ids in rows:
        assert codec.steps_of(ids) == 64
        notes, steps = codec.decode_notes(ids)
        assert notes and steps == 64
        assert (codec.encode(notes, steps) == ids).all()  # every sampled sequence is one encode produces
        assert all(50 <= p <= 74 and pitch_mask("D", np.array([p]))[0] for p, _, _ in notes)
        from app.music.polycodec import piano_roll

        assert piano_roll(notes, steps)[1].sum(axis=0).max() <= 4  # max_voices


@pytest.mark.slow  # trains a model and builds Keras models
def test_poly_corpus_train_generate_with_one_command_each(tmp_path, capsys):
    import keras

    from app.core.folder import load_model_folder
    from app.core.sampling import softmax
    from app.music import models as M
    from app.music.archs.base import stepper_for

    src = piano_folder(tmp_path / "piano")
    assert cli_main(["music", "corpus", "--source", str(src), "--out", str(tmp_path / "c"), "--mode", "poly",
                     "--min-pitch", "40", "--max-pitch", "90", "--jobs", "1", "--transpose", "C", "--quiet"]) == 0
    assert cli_main(["music", "train", "--corpus", str(tmp_path / "c"), "--out", str(tmp_path / "m"),
                     "--units", "24", "--epochs", "3", "--tx", "64", "--quiet"]) == 0
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["codec"]["mode"] == "poly" and cfg["arch"]["name"] == "basic"
    assert cfg["codec"]["transpose"] == "C"  # --key transposes its pieces (tests/test_music_keys.py)
    gen = MelodyGenerator.load(tmp_path / "m")
    pieces = gen.generate(n=3, bars=4, seed=1, key="C", min_pitch=45, max_pitch=84)
    assert all(isinstance(p, GeneratedPiece) and p.steps == 64 for p in pieces)
    assert all(45 <= n[0] <= 84 and n[0] % 12 in (0, 2, 4, 5, 7, 9, 11) for p in pieces for n in p.notes())
    capsys.readouterr()
    assert cli_main(["music", "generate", "--model", str(tmp_path / "m"), "-n", "2", "--bars", "4", "--seed", "2",
                     "--out-dir", str(tmp_path / "out"), "--synth", "builtin", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert len(res) == 2 and all(r["steps"] == 64 for r in res)
    from app.music.midi_io import read_midi

    for r in res:
        for k in ("mid", "wav", "png"):
            assert (tmp_path / "out" / r[k].split("/")[-1]).stat().st_size > 0
        notes = read_midi(r["mid"]).tracks[0].notes
        onsets = [on for _, on, _ in notes]
        assert len(notes) == r["notes"] and len(onsets) > len(set(onsets))  # notes sharing an onset: chords
        assert "abc" not in r  # ABC is for melodies; the default svg engraves a grand staff when verovio is here
    # ABC, or a primer in a melody-only format, is a clear error; MusicXML and a MIDI primer file work
    assert cli_main(["music", "generate", "--model", str(tmp_path / "m"), "--formats", "mid,abc"]) == 2
    assert "ABC is written for melody models" in capsys.readouterr().err
    assert cli_main(["music", "generate", "--model", str(tmp_path / "m"), "--formats", "mid,musicxml", "--bars",
                     "2", "--out-dir", str(tmp_path / "xml"), "--synth", "builtin", "--json"]) == 0
    xml = json.loads(capsys.readouterr().out)[0]["musicxml"]
    assert "<staves>2</staves>" in open(xml).read()
    (tmp_path / "p.abc").write_text("X:1\nM:4/4\nL:1/4\nK:C\nCDEF|\n")
    assert cli_main(["music", "generate", "--model", str(tmp_path / "m"), "--primer-file",
                     str(tmp_path / "p.abc")]) == 2
    assert "MIDI primer file" in capsys.readouterr().err
    assert cli_main(["music", "generate", "--model", str(tmp_path / "m"), "--primer-file", res[0]["mid"],
                     "--bars", "1", "--out-dir", str(tmp_path / "out2"), "--synth", "builtin", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["primer_steps"] == 64

    # music report: polyphony features next to the held-out pieces
    assert cli_main(["music", "report", "--model", str(tmp_path / "m"), "-n", "4", "--temperatures", "1.0",
                     "--out-dir", str(tmp_path / "rep"), "--quiet"]) == 0
    rep = json.loads(next((tmp_path / "rep").glob("*-music-poly/report.json")).read_text())
    assert rep["mode"] == "poly" and rep["by_temperature"][0]["generated"]["pieces"] == 4
    assert rep["heldout"]["sounding_per_step"] > 1  # chords in the held-out pieces
    assert "notes sounding per step" in capsys.readouterr().out

    # fast path == Keras trainer == the document's step loop, teacher-forced on held-out poly tokens
    folder = load_model_folder(tmp_path / "m", domain="music")
    from app.music.corpus import load_corpus

    val = load_corpus(tmp_path / "c").val[0][:80]
    ids = np.concatenate([[-1], val[:-1]])[None]
    st = stepper_for(folder)
    fast = softmax(st.run(ids).astype(np.float64))
    trainer = keras.saving.load_model(tmp_path / "m" / "model.keras", safe_mode=True)
    np.testing.assert_allclose(softmax(np.asarray(trainer(ids.astype(np.int32)), np.float64)), fast, atol=1e-5)
    _, cell, densor = M.build_doc_layers(folder.weights, folder.model_config, folder.vocab.size)
    dj = M.djmodel(ids.shape[1], folder.model_config.units, folder.vocab.size, [M.make_layers(
        folder.model_config.units, folder.vocab.size)[0], cell, densor])
    doc = np.stack(dj.predict(M.doc_inputs(ids, folder.vocab.size, folder.model_config.units), verbose=0), 1)
    np.testing.assert_allclose(doc, fast, atol=1e-5, rtol=0)

"""--key on a model trained in one key (issue 14): a corpus built with `--transpose C` holds every piece in C major /
A minor, so the model folder records it (config.json codec.transpose "C") and `generate(key=X)` samples X's mode
on C or A and moves the result to X, instead of masking a C-major model to a scale it never saw. Other models
sample in X itself, as before."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from app.core.folder import check_codec
from app.errors import ModelFolderError, OptionError
from app.music.generate import MelodyGenerator
from app.music.scales import home_key, pitch_mask
from tests.conftest import ROOT


def copy_model(name, dest, transpose):
    """A copy of a shipped model folder with config.json codec.transpose set (or removed)."""
    shutil.copytree(ROOT / "models" / name, dest, ignore=shutil.ignore_patterns("*.keras"))
    (dest / "model.keras").write_bytes(b"")  # present (the folder layout); generation reads weights.npz only
    cfg = json.loads((dest / "config.json").read_text())
    cfg["codec"].pop("transpose", None)
    if transpose:
        cfg["codec"]["transpose"] = transpose
    (dest / "config.json").write_text(json.dumps(cfg))
    return dest


@pytest.mark.parametrize("key,model_key,shift", [
    ("G", "C major", -5), ("Em", "A minor", -5), ("F#", "C major", 6), ("Bb", "C major", -2), ("C", "C major", 0),
    ("D dorian", "A dorian", 5), ("Gb minor", "A minor", -3), ("chromatic", "chromatic", 0)])
def test_home_key_keeps_the_mode_on_c_or_a(key, model_key, shift):
    assert home_key(key) == (model_key, shift)
    moved = {(p + shift) % 12 for p in range(12) if pitch_mask(model_key, np.array([p]))[0]}
    assert moved == {p for p in range(12) if pitch_mask(key, np.array([p]))[0]}  # the same scale, moved


def test_config_transpose_is_checked():
    check_codec("music", {"transpose": "C"}, "x")
    with pytest.raises(OptionError, match="transpose must be one of 'C'"):
        check_codec("music", {"transpose": "G"}, "x")


def test_damaged_transpose_field_is_a_clear_folder_error(tmp_path):
    m = copy_model("chorales", tmp_path / "m", "C")
    cfg = json.loads((m / "config.json").read_text())
    cfg["codec"]["transpose"] = 7
    (m / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="transpose must be one of"):
        MelodyGenerator.load(m)


def test_poly_model_in_c_writes_the_asked_key_by_transposing(tmp_path):
    gen = MelodyGenerator.load(copy_model("chorales", tmp_path / "m", "C"))
    c = gen.generate(n=3, bars=4, seed=5, key="C")
    for key, shift in (("G", -5), ("Eb", 3), ("F#", 6)):
        out = gen.generate(n=3, bars=4, seed=5, key=key)
        for a, b in zip(c, out):
            assert (a.ids == b.ids).all() and b.transpose == shift and b.key == key  # one sampling, moved
            assert b.notes() == [(p + shift, s, e) for p, s, e in a.notes()]
            assert all(pitch_mask(key, np.array([p]))[0] for p, _, _ in b.notes())
    # the pitch range is the asked one, in the asked key
    out = gen.generate(n=4, bars=4, seed=1, key="D", min_pitch=50, max_pitch=74)
    assert all(50 <= p <= 74 for piece in out for p, _, _ in piece.notes())
    # a primer given in the asked key is moved into the model's key, and comes back where it was
    primer = gen.generate(n=1, bars=1, seed=2, key="C")[0]
    from app.music.polygen import write_notes_midi

    moved = [(p + 2, s, e) for p, s, e in primer.notes()]
    write_notes_midi(moved, tmp_path / "p.mid")
    out = gen.generate(n=1, bars=2, seed=3, key="D", primer_midi=tmp_path / "p.mid")[0]
    assert out.transpose == 2 and out.primer_steps == 16
    assert {(p, s) for p, s, _ in out.notes() if s < 16} == {(p, s) for p, s, _ in moved}


def test_a_primer_that_leaves_the_range_when_moved_is_a_clear_error(tmp_path):
    from app.music.polygen import write_notes_midi

    gen = MelodyGenerator.load(copy_model("chorales", tmp_path / "m", "C"))
    top = gen.codec.max_pitch
    write_notes_midi([(top, 0, 4), (top - 5, 4, 8)], tmp_path / "p.mid")  # in range as given, in G (shift -5)
    with pytest.raises(OptionError, match=r"moved by \+5 semitones into C major leaves the model's pitch range"):
        gen.generate(n=1, bars=1, seed=0, key="G", primer_midi=tmp_path / "p.mid")
    assert gen.generate(n=1, bars=1, seed=0, key="F#", primer_midi=tmp_path / "p.mid")[0].transpose == 6


def test_poly_model_in_c_minor_keys_move_from_a_minor(tmp_path):
    gen = MelodyGenerator.load(copy_model("chorales", tmp_path / "m", "C"))
    am, em = (gen.generate(n=2, bars=4, seed=8, key=k) for k in ("Am", "Em"))
    assert all((a.ids == e.ids).all() and e.transpose == -5 for a, e in zip(am, em))


def test_a_model_without_transpose_masks_in_the_asked_key(tmp_path):
    gen = MelodyGenerator.load(copy_model("chorales", tmp_path / "m", None))
    out = gen.generate(n=3, bars=4, seed=5, key="Eb")
    assert all(p.transpose == 0 for p in out)
    assert all(pitch_mask("Eb", np.array([n[0]]))[0] for p in out for n in p.notes())


def test_melody_model_in_c_transposes_too(tmp_path):
    gen = MelodyGenerator.load(copy_model("folk", tmp_path / "m", "C"))
    c = gen.generate(n=3, bars=4, seed=4, key="C")
    d = gen.generate(n=3, bars=4, seed=4, key="D")
    for a, b in zip(c, d):
        assert (a.ids == b.ids).all() and b.transpose == 2
        assert b.notes() == [(p + 2, s, e) for p, s, e in a.notes()]
    plain = MelodyGenerator.load(copy_model("folk", tmp_path / "plain", None))
    assert all(m.transpose == 0 for m in plain.generate(n=2, bars=2, seed=4, key="D"))

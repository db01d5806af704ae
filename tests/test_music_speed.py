"""What makes cold `music generate` cheaper keeps its output: FluidSynth with dynamic sample loading writes the
same WAV as a render that loads the whole SoundFont."""

from __future__ import annotations

import subprocess

import pytest

from app.music import synth
from app.music.melody import Melody
from app.music.midi_io import write_midi


@pytest.mark.slow  # starts FluidSynth twice
@pytest.mark.skipif(synth.fluidsynth_available() is None, reason="fluidsynth or the GM SoundFont is not installed")
def test_dynamic_sample_loading_renders_the_same_wav(tmp_path):
    binary, sf2 = synth.fluidsynth_available()
    mid = tmp_path / "m.mid"
    write_midi(Melody.from_notes([(60, 0, 4), (67, 4, 8), (72, 8, 10), (55, 10, 16)], qpm=120.0, program=40), mid)
    assert synth.render_fluidsynth(mid, tmp_path / "dynamic.wav", (binary, sf2))
    subprocess.run([binary, "-ni", "-q", "-g", "0.8", "-r", "44100", "-T", "wav", "-F", str(tmp_path / "full.wav"),
                    sf2, str(mid)], check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    dynamic, rate = synth.read_wav(tmp_path / "dynamic.wav")
    full, _ = synth.read_wav(tmp_path / "full.wav")
    assert rate == 44100 and synth.rms(full) > 1e-3
    assert dynamic.shape == full.shape and (dynamic == full).all()

"""Melody -> 16-bit WAV. FluidSynth with a General MIDI SoundFont when both are installed (Debian packages
`fluidsynth` and `fluid-soundfont-gm`), otherwise our own small additive synthesiser. Never silent: a rendering that
comes out silent (or a FluidSynth failure) falls back to our synthesiser, and a melody with no notes is an error.

Our synthesiser, per note of MIDI pitch p (f = 440 * 2 ** ((p - 69) / 12)):
  signal  sum_k a_k sin(2 pi k f t) for partials k = 1, 2, 3, 4 with a_k = 1, 0.5, 0.25, 0.12 (a soft, organ/flute-
          like tone; partials above Nyquist are skipped)
  envelope  linear attack 10 ms, exponential decay to a sustain of 0.6 (time constant 80 ms), linear release 60 ms
          after the note ends (so notes never click)
The mix is normalised to a peak of 0.8 full scale (-2 dBFS) and written as mono 16-bit PCM with the stdlib `wave`.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.outputs import atomic_write, file_mode
from app.errors import DataError

SOUNDFONT_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
SAMPLE_RATE = 22050
PARTIALS = (1.0, 0.5, 0.25, 0.12)
ATTACK_S, DECAY_TAU_S, SUSTAIN, RELEASE_S = 0.010, 0.080, 0.6, 0.060
PEAK = 0.8
SILENCE_RMS = 1e-4  # a render whose RMS (full scale = 1) is below this counts as silent

# a note: (MIDI pitch, start seconds, end seconds, velocity 1..127)
Note = tuple[int, float, float, int]


def fluidsynth_available() -> tuple[str, str] | None:
    """(fluidsynth binary, SoundFont path) when both are installed, else None."""
    binary = shutil.which("fluidsynth")
    sf2 = next((p for p in SOUNDFONT_PATHS if os.path.isfile(p)), None)
    return (binary, sf2) if binary and sf2 else None


def synthesize(notes: Sequence[Note], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Our synthesiser: notes -> float32 mono samples in [-PEAK, PEAK]."""
    if not notes:
        raise DataError("the melody has no notes, so there is nothing to play; generate a longer melody or "
                        "check the constraints (--key, pitch range)")
    end = max(e for _, _, e, _ in notes) + RELEASE_S + 0.05
    out = np.zeros(int(end * sample_rate) + 1, np.float64)
    for pitch, start, stop, vel in notes:
        dur = max(stop - start, 0.02)
        n = int((dur + RELEASE_S) * sample_rate)
        t = np.arange(n) / sample_rate
        f = 440.0 * 2.0 ** ((pitch - 69) / 12.0)
        tone = sum(a * np.sin(2 * np.pi * k * f * t) for k, a in enumerate(PARTIALS, start=1)
                   if k * f < sample_rate / 2)
        env = np.where(t < ATTACK_S, t / ATTACK_S,
                       SUSTAIN + (1 - SUSTAIN) * np.exp(-(t - ATTACK_S) / DECAY_TAU_S))
        at_release = env[min(int(dur * sample_rate), n - 1)]
        rel = t >= dur
        env[rel] = at_release * np.clip(1 - (t[rel] - dur) / RELEASE_S, 0, 1)
        i0 = int(start * sample_rate)
        out[i0:i0 + n] += (vel / 127.0) * env * tone
    peak = np.abs(out).max()
    return (out * (PEAK / peak)).astype(np.float32)


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV -> (float samples (frames, channels) in [-1, 1], sample rate)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise DataError(f"{path}: expected 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        data = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        return data.reshape(-1, w.getnchannels()), w.getframerate()


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0


_WRAPPER = ("import ctypes,os,sys;ctypes.CDLL(None).prctl(1,9,0,0,0);"  # PR_SET_PDEATHSIG, SIGKILL
            "os.getppid()==int(sys.argv[1]) or os._exit(70);os.execvp(sys.argv[2],sys.argv[2:])")


def dies_with_us(argv: list[str]) -> list[str]:
    """`argv` wrapped so that on Linux the kernel kills the program (SIGKILL) when the process that started it dies
    (prctl PR_SET_PDEATHSIG, kept across exec): a `kill -9` of a generation leaves no FluidSynth behind. The wrapper
    is util-linux `setpriv --pdeathsig KILL` or, without it, a tiny `python -S` that sets it and execs. (Not
    Popen's preexec_fn: forking with it takes the interpreter's import lock while holding the GIL, which can
    deadlock a threaded server such as the web page's.)"""
    import sys

    if not sys.platform.startswith("linux"):
        return list(argv)
    setpriv = shutil.which("setpriv")
    if setpriv:
        return [setpriv, "--pdeathsig", "KILL", "--", *argv]
    return [sys.executable, "-S", "-E", "-c", _WRAPPER, str(os.getpid()), *argv]


RENDER_TIMEOUT_S = 60.0  # a FluidSynth render that takes longer is killed and our synthesiser used instead


class FluidRender:
    """One FluidSynth render running in the background: start it, do other work, then `finish()` (or `stop()`).

    The FluidSynth process dies with ours (dies_with_us) and is killed after RENDER_TIMEOUT_S."""

    def __init__(self, midi_path: str | Path, wav_path: str | Path, tools: tuple[str, str],
                 sample_rate: int = 44100):
        binary, sf2 = tools
        self.wav_path = Path(wav_path)
        fd, self.tmp = tempfile.mkstemp(prefix=f".{self.wav_path.name}.", suffix=".wav", dir=self.wav_path.parent)
        os.close(fd)
        try:
            # dynamic sample loading: only the samples the tune plays are read from the 148 MB SoundFont
            # (the same WAV, about 0.2 s less CPU per render)
            self.proc = subprocess.Popen(dies_with_us([binary, "-ni", "-q", "-g", "0.8", "-r", str(sample_rate),
                                                       "-o", "synth.dynamic-sample-loading=1",
                                                       "-T", "wav", "-F", self.tmp, sf2, str(midi_path)]),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None

    def stop(self) -> None:
        """Kill the render if it still runs, and remove its temporary file."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if os.path.exists(self.tmp):
            os.unlink(self.tmp)

    def finish(self, timeout: float = RENDER_TIMEOUT_S) -> bool:
        """Wait; True if a non-silent WAV is now at wav_path (moved there atomically)."""
        try:
            if self.proc is None or self.proc.wait(timeout=timeout) != 0 or os.path.getsize(self.tmp) <= 44:
                return False
            samples, _ = read_wav(self.tmp)
            if rms(samples) < SILENCE_RMS:
                return False
            os.chmod(self.tmp, file_mode())  # mkstemp made it private
            os.replace(self.tmp, self.wav_path)
            return True
        except (OSError, subprocess.SubprocessError, DataError, wave.Error, EOFError):
            return False
        finally:
            self.stop()


def render_fluidsynth(midi_path: str | Path, wav_path: str | Path, tools: tuple[str, str],
                      sample_rate: int = 44100, timeout: float = RENDER_TIMEOUT_S) -> bool:
    """Render with FluidSynth into wav_path (atomically). True if it produced a non-silent WAV."""
    return FluidRender(midi_path, wav_path, tools, sample_rate).finish(timeout)


def write_wav(notes: Sequence[Note], wav_path: str | Path, midi_path: str | Path | None = None,
              engine: str = "auto") -> str:
    """Write the melody as WAV. engine: "auto" (FluidSynth if installed and midi_path given, else ours),
    "fluidsynth" (falls back to ours if it fails) or "builtin". Returns the engine actually used."""
    if not notes:
        synthesize(notes)  # raises the "no notes" DataError
    tools = fluidsynth_available() if engine in ("auto", "fluidsynth") else None
    if tools and midi_path is not None and render_fluidsynth(midi_path, wav_path, tools):
        return "fluidsynth"
    atomic_write(wav_path, wav_bytes(synthesize(notes)))
    return "builtin"

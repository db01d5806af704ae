"""Music test files built in code: MIDI (pretty_midi / mido), ABC text, and the bad inputs of issue 3."""

from __future__ import annotations

import io
import random
from pathlib import Path

import mido
import numpy as np
import pretty_midi

# A 16-note melody in G major, (pitch, onset, offset) in quarter notes, with a rest between beats 8 and 9.
TUNE = [(67, 0, 1), (69, 1, 2), (71, 2, 3), (72, 3, 4), (74, 4, 5), (72, 5, 5.5), (71, 5.5, 6), (69, 6, 8),
        (71, 9, 10), (67, 10, 11), (66, 11, 12), (67, 12, 13), (62, 13, 14), (64, 14, 15), (66, 15, 16),
        (67, 16, 18)]

ABC_TWO_TUNES = """%abc
X:1
T:First
M:3/4
L:1/8
Q:1/4=100
K:G
GABc dB | c2 A2 F2 | GABc dB | AGFE D2 |
GABc dB | c2 A2 F2 | G2 B2 d2 | g4 z2 |]

X:2
T:Second
M:6/8
L:1/8
K:D
DFA dAF | GBd gdB | AFD EFG | A3 A3 |
DFA dAF | GBd gdB | AFD EGF | D3 D3 |]
"""

ABC_SYNTAX_ERROR = "X:1\nT:Broken\nM:4/4\nK:G\nA(B[c\nL:1/0\nd\n"


def midi_bytes(tracks, qpm: float = 120.0, time_signature=(4, 4), resolution: int = 480) -> bytes:
    """tracks: list of dicts {notes: [(pitch, on_q, off_q)], program, is_drum, name} -> .mid bytes."""
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=qpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*time_signature, 0.0))
    spq = 60.0 / qpm
    for t in tracks:
        inst = pretty_midi.Instrument(program=t.get("program", 0), is_drum=t.get("is_drum", False),
                                      name=t.get("name", ""))
        for p, on, off in t["notes"]:
            inst.notes.append(pretty_midi.Note(velocity=90, pitch=p, start=on * spq, end=off * spq))
        pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def melody_midi(notes=TUNE, **kw) -> bytes:
    return midi_bytes([{"notes": notes, "program": 73, "name": "flute"}], **kw)


def band_tracks() -> list[dict]:
    """Drums (busiest), bass (busy, low) and melody (high) -- the melody must be chosen."""
    drums = [(36 if k % 2 == 0 else 38, k * 0.5, k * 0.5 + 0.25) for k in range(64)]
    bass = [(36 + (k % 4) * 2, k * 0.5, k * 0.5 + 0.5) for k in range(32)]
    return [{"notes": drums, "is_drum": True, "name": "drums"},
            {"notes": bass, "program": 33, "name": "bass"},
            {"notes": TUNE, "program": 0, "name": "lead"}]


def absurd_tick_midi() -> bytes:
    """A note-off 2**27 ticks after its note-on (pretty_midi refuses ticks above 1e7 as corrupt)."""
    mf = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    mf.tracks.append(tr)
    tr.append(mido.Message("note_on", note=60, velocity=90, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=2 ** 27))
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def bad_files() -> dict[str, tuple[bytes, str]]:
    """file name -> (bytes, expected skip reason), one per bad input of the issue."""
    good = melody_midi()
    return {
        "random.mid": (random.Random(0).randbytes(300), "not MIDI"),
        "truncated.mid": (good[: len(good) // 2], "truncated"),
        "zero.mid": (b"", "empty file"),
        "drums.mid": (midi_bytes([band_tracks()[0]]), "drums only"),
        "nonotes.mid": (midi_bytes([{"notes": [], "name": "silent"}]), "no notes"),
        "absurd.mid": (absurd_tick_midi(), "too long"),
        "broken.abc": (ABC_SYNTAX_ERROR.encode(), "unreadable"),
    }


def write(folder: Path, name: str, data: bytes | str) -> Path:
    p = Path(folder) / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return p


def pattern_pieces(codec, n: int, seed) -> list[np.ndarray]:
    """Learnable toy melodies: rising arpeggios in quarter notes (note-on, hold, hold, hold), random start.
    seed: an int, or a np.random.Generator to continue drawing from (default_rng returns it as it is)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = int(rng.integers(2, codec.size - 6))
        notes = [base + (k % 3) * 2 for k in range(int(rng.integers(5, 9)))]
        out.append(np.array([t for p in notes for t in (p, 0, 0, 0)], np.int32))
    return out


# --- melodies for the score writers (issue 16): every arch, metres, keys, primers, exact repeats ---------------------
SCORE_KEYS = ("G", "D", "A", "E", "B", "F#m", "F", "Bb", "Eb", "Ab", "Db", "Dm", "Gm", "Cm", "D dorian",
              "A harmonic-minor", "C", None)
SCORE_METRES = ((4, 4), (3, 4), (6, 8))


def arch_shapes(arch_name, settings, units, vocab) -> dict:
    """The weight arrays and shapes of a one-layer LSTM model of `arch_name` (what its Keras model exports)."""
    from app.core.modelconfig import ModelConfig
    from app.music.archs.base import get_arch

    cfg = ModelConfig(cell="lstm", units=units, layers=1, input="onehot")
    return get_arch(arch_name).numpy().weight_shapes(cfg, settings, vocab)


def random_arch_weights(arch_name, settings, rng, units=8, vocab=9, scale=1.0):
    """Random numpy weights of the right shapes for an arch's stepper (no Keras, no training)."""
    u = units
    shapes = arch_shapes(arch_name, settings, u, vocab)
    # the attention output feeds back through its memory: a large out_kernel makes it grow without bound (inf/NaN)
    weights = {k: rng.normal(0, 0.12 if k == "attn/out_kernel" else scale, s).astype(np.float32)
               for k, s in shapes.items()}
    weights["head/bias"][0] += 3.0  # favour holds: longer notes, so bars get tied notes and dotted values
    return weights


def score_melodies(n: int = 200, seed: int = 0, bars: int = 8):
    """`n` GeneratedMelody objects from random-weight models of every arch (basic, lookback, attention) in 4/4,
    3/4 and 6/8, keys with sharps and flats (and None: the writers estimate one), every other one with a primer,
    every fourth with bars 5-8 an exact copy of bars 1-4 (and every eighth 16 bars long with bars 9-16 a copy of
    1-8): the inputs of the abc2midi / round-trip checks."""
    from app.core.modelconfig import ModelConfig
    from app.core.sampling import SamplingOptions
    from app.music.archs.base import get_arch
    from app.music.codec import MelodyCodec
    from app.music.generate import GeneratedMelody, note_pitches
    from app.music.melody import Melody
    from app.music.metre import steps_per_bar
    from app.music.sampler import MelodyOptions, generate_ids

    codec = MelodyCodec(55, 86)
    pitches = note_pitches(codec)
    cfg = ModelConfig(cell="lstm", units=8, layers=1, input="onehot")
    small = {"lookback": {"lookbacks": (1, 2)}, "attention": {"attn_length": 6, "attn_dim": 5}}
    rng = np.random.default_rng(seed)
    steppers = {}
    out = []
    for i in range(n):
        arch_name = ("basic", "lookback", "attention")[i % 3]
        ts = SCORE_METRES[(i // 3) % 3]
        key = SCORE_KEYS[i % len(SCORE_KEYS)]
        if (arch_name, ts) not in steppers:
            arch = get_arch(arch_name)
            settings = arch.make_settings(small.get(arch_name, {}))
            w = random_arch_weights(arch_name, settings, np.random.default_rng(len(steppers)), vocab=codec.size)
            steppers[(arch_name, ts)] = arch.numpy().make_stepper(w, cfg, settings, codec.size, time_signature=ts)
        bar = steps_per_bar(4, ts)
        n_bars = 16 if i % 8 == 4 else bars
        primer = None
        if i % 2 == 1:  # a primer of 1-2 bars: quarter and eighth notes, some tied over the bar line
            ps = [int(p) for p in rng.integers(62, 78, 6)]
            lens = [int(x) for x in rng.choice([2, 4, 6], 6)]
            starts = np.cumsum([0] + lens[:-1])
            primer = codec.encode(Melody.from_notes([(p, int(s), int(s + d)) for p, s, d in zip(ps, starts, lens)]))
        opts = MelodyOptions(n=1, steps=n_bars * bar - (0 if primer is None else len(primer)), seed=i, key=key,
                             sampling=SamplingOptions(temperature=1.0))
        ids = generate_ids(steppers[(arch_name, ts)], pitches, opts, primer)[0].copy()
        if i % 4 == 0:  # an exact repeat: the first half played again
            half = n_bars // 2 * bar
            ids[half:2 * half] = ids[:half]
            if ids[half] == 0:  # start the copy with an event so nothing is tied into it
                ids[0] = ids[half] = 1
        out.append(GeneratedMelody(ids, 4, ts, float((90, 120, 100)[i % 3]), 0,
                                   0 if primer is None else len(primer), codec, key=key))
    return out


def default_generate_suffixes(env: dict | None = None) -> set[str]:
    """The files `music generate` writes per melody by default (app.music.formats.DEFAULT_FORMATS): .mid, .wav,
    .png, .abc, and the engraved .svg when a child process with `env` can import verovio (without it the default
    set leaves the .svg out, with a note)."""
    import subprocess
    import sys

    code = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('verovio') else 1)"
    has_verovio = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True).returncode == 0
    return {".mid", ".wav", ".png", ".abc"} | ({".svg"} if has_verovio else set())

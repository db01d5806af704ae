"""Library entry of `music generate`: model folder -> melodies -> .mid + .wav + .png files (no TensorFlow).

Files: <out_dir>/<timestamp>_<n>.mid, .wav, .png for n = 1..count; if any of the three already exists the stem gets
a -2, -3 ... suffix, so nothing is ever overwritten.

Primer: `primer_pitches` ("60 62 64": each pitch lasts one quarter note) or `primer_midi` (the file's melody line,
read on the model's grid). The output starts with the primer and continues it for the requested length.
Length: `steps` (grid steps) or `bars` (bars of the model's time signature, default 4/4), at most
app.music.sampler.MAX_STEPS steps of new music.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import ModelFolder, load_model_folder
from app.core.outputs import ensure_dir, timestamp, unique_stem
from app.core.sampling import SamplingOptions
from app.errors import DataError, OptionError
from app.music.sampler import MAX_STEPS, MelodyOptions, generate_ids

DEFAULT_MODEL_DIR = "models/folk"
DEFAULT_OUT_DIR = "outputs/music"
MAX_BARS = 256
MAX_PARALLEL_RENDERS = 8  # FluidSynth processes started at once; later melodies render one by one


@dataclass(frozen=True)
class GenerateRequest:
    model: str | Path = DEFAULT_MODEL_DIR
    n: int = 1
    bars: int | None = None  # default 8 when steps is not given either
    steps: int | None = None
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    beam: int = 1
    seed: int | None = None
    key: str | None = None
    min_pitch: int | None = None
    max_pitch: int | None = None
    primer_pitches: Sequence[int] | str | None = None
    primer_midi: str | Path | None = None
    qpm: float = 120.0
    program: int = 0
    out_dir: str | Path = DEFAULT_OUT_DIR
    wav: bool = True
    png: bool = True
    synth: str = "auto"
    time_signature: str | tuple[int, int] | None = None  # default: the model's (config codec.time_signature)


def model_grid(folder: ModelFolder) -> tuple[int, tuple[int, int]]:
    codec = folder.config.get("codec", {})
    ts = codec.get("time_signature") or (4, 4)
    return int(codec.get("steps_per_quarter", 4)), (int(ts[0]), int(ts[1]))


def steps_per_bar(spq: int, time_signature: tuple[int, int]) -> int:
    num, den = time_signature
    return max(1, round(spq * 4 * num / den))


def resolve_steps(bars: int | None, steps: int | None, spb: int) -> int:
    if steps is not None and bars is not None:
        raise OptionError("give the length either in bars or in steps, not both")
    if steps is not None:
        if int(steps) != steps or not 1 <= steps <= MAX_STEPS:
            raise OptionError(f"--steps must be 1..{MAX_STEPS}, got {steps!r}")
        return int(steps)
    bars = 8 if bars is None else bars
    limit = min(MAX_BARS, MAX_STEPS // spb)
    if int(bars) != bars or not 1 <= bars <= limit:
        raise OptionError(f"--bars must be 1..{limit} ({MAX_STEPS} steps of {spb} per bar), got {bars!r}")
    return int(bars) * spb


def parse_pitches(text: str | Sequence[int]) -> list[int]:
    if isinstance(text, str):
        parts = text.replace(",", " ").split()
        try:
            pitches = [int(p) for p in parts]
        except ValueError:
            raise OptionError(f"--primer must be MIDI pitch numbers separated by spaces, e.g. \"60 62 64\"; "
                              f"got {text!r}") from None
    else:
        pitches = [int(p) for p in text]
    if not pitches:
        raise OptionError("--primer is empty; give MIDI pitch numbers, e.g. \"60 62 64\"")
    return pitches


def primer_ids(folder: ModelFolder, codec, pitches=None, midi=None) -> np.ndarray | None:
    """Primer as token ids on the model's grid; errors name the model's pitch range."""
    from app.music.melody import Melody

    if pitches is not None and midi is not None:
        raise OptionError("give either --primer or --primer-midi, not both")
    spq, ts = model_grid(folder)
    if pitches is not None:
        ps = parse_pitches(pitches)
        melody = Melody.from_notes([(p, i * spq, (i + 1) * spq) for i, p in enumerate(ps)], steps_per_quarter=spq)
        source = "--primer"
    elif midi is not None:
        from app.music.midi_io import read_melody

        if not Path(midi).is_file():
            raise DataError(f"primer MIDI {str(midi)!r} does not exist; pass a .mid file with a melody")
        melody = read_melody(midi, steps_per_quarter=spq)
        if not melody.notes():
            raise DataError(f"primer MIDI {str(midi)!r} has no melody notes (only drums, or empty)")
        source = f"primer MIDI {str(midi)!r}"
    else:
        return None
    bad = sorted({p for p, _, _ in melody.notes() if not codec.min_pitch <= p <= codec.max_pitch})
    if bad:
        raise OptionError(f"{source} has pitches {bad[:8]} outside the model's range {codec.min_pitch}.."
                          f"{codec.max_pitch}; transpose the primer into that range")
    ids = codec.encode(melody)
    if len(ids) > MAX_STEPS:
        raise OptionError(f"{source} is {len(ids)} steps long; the limit is {MAX_STEPS} steps")
    return ids


def note_pitches(codec) -> np.ndarray:
    """MIDI pitch of each token id, -1 for hold and rest."""
    from app.music.codec import HOLD_ID, REST_ID

    out = np.full(codec.size, -1, np.int64)
    notes = [i for i in range(codec.size) if i not in (HOLD_ID, REST_ID)]
    out[notes] = [int(codec.vocab.tokens[i]) for i in notes]
    return out


def generate(req: GenerateRequest) -> list[dict]:
    """Sample `req.n` melodies and write their files. Returns one dict per melody with the paths and facts."""
    from app.music.codec import MelodyCodec

    if int(req.program) != req.program or not 0 <= req.program <= 127:
        raise OptionError(f"--program must be a General MIDI program 0..127, got {req.program}")
    if not 20 <= req.qpm <= 400:
        raise OptionError(f"--qpm must be 20..400 quarter notes per minute, got {req.qpm}")
    folder = load_model_folder(req.model, domain="music")
    try:
        codec = MelodyCodec.from_vocab(folder.vocab)
    except DataError as exc:
        raise DataError(f"{req.model}: {exc}") from None
    spq, ts = model_grid(folder)
    if req.time_signature is not None:
        from app.music.archs.features import parse_time_signature

        ts = parse_time_signature(req.time_signature)
    steps = resolve_steps(req.bars, req.steps, steps_per_bar(spq, ts))
    opts = MelodyOptions(n=req.n, steps=steps, sampling=req.sampling, beam=req.beam, seed=req.seed, key=req.key,
                         min_pitch=req.min_pitch, max_pitch=req.max_pitch)
    primer = primer_ids(folder, codec, req.primer_pitches, req.primer_midi)
    from app.music.archs.base import stepper_for

    ids = generate_ids(stepper_for(folder, ts), note_pitches(codec), opts, primer)
    return write_outputs(ids, codec, out_dir=req.out_dir, spq=spq, time_signature=ts, qpm=req.qpm,
                         program=req.program, primer_steps=0 if primer is None else len(primer),
                         wav=req.wav, png=req.png, synth=req.synth, title=f"{Path(req.model).name}")


def write_outputs(ids: np.ndarray, codec, *, out_dir, spq: int, time_signature, qpm: float, program: int,
                  primer_steps: int = 0, wav: bool = True, png: bool = True, synth: str = "auto",
                  title: str = "") -> list[dict]:
    from app.music.midi_io import write_midi

    folder = ensure_dir(out_dir)
    stamp = timestamp()
    suffixes = (".mid", ".wav", ".png")
    step_s = 60.0 / (qpm * spq)
    results, renders = [], []
    tools = None
    if wav and synth != "builtin":
        from app.music.synth import fluidsynth_available

        tools = fluidsynth_available()
    # 1. every .mid, starting the FluidSynth renders in the background (a few at a time)
    for k, row in enumerate(ids, start=1):
        melody = codec.decode(row, steps_per_quarter=spq, qpm=qpm, time_signature=time_signature, program=program)
        notes = melody.notes()
        if not notes:
            raise DataError("a generated melody has no notes (only holds and rests); try another seed, a higher "
                            "temperature or more bars")
        stem = unique_stem(folder, f"{stamp}_{k}", suffixes)
        mid = stem.with_name(stem.name + ".mid")
        write_midi(melody, mid)
        info = {"mid": str(mid), "steps": int(len(row)), "primer_steps": primer_steps, "notes": len(notes),
                "ids": [int(i) for i in row]}
        if wav:
            info["wav"] = str(stem.with_name(stem.name + ".wav"))
        results.append((info, stem, notes))
    if tools:
        from app.music.synth import FluidRender

        renders = [FluidRender(info["mid"], info["wav"], tools) if k < MAX_PARALLEL_RENDERS else None
                   for k, (info, _, _) in enumerate(results)]
    # 2. piano rolls while FluidSynth works
    if png:
        from app.music.pianoroll import render_png

        for k, (info, stem, notes) in enumerate(results, start=1):
            path = stem.with_name(stem.name + ".png")
            render_png([(p, s / spq, e / spq) for p, s, e in notes], path,
                       beats_per_bar=4.0 * time_signature[0] / time_signature[1], primer_end=primer_steps / spq,
                       title=f"{title} #{k}  ({len(notes)} notes, {qpm:g} qpm)")
            info["png"] = str(path)
    # 3. WAVs: finish the renders; any that failed or were silent (or were not started) use write_wav
    if wav:
        from app.music.synth import write_wav

        for k, (info, _, notes) in enumerate(results):
            tried = bool(renders) and renders[k] is not None
            if tried and renders[k].finish():
                info["synth"] = "fluidsynth"
                continue
            timed = [(p, s * step_s, e * step_s, 90) for p, s, e in notes]
            engine = "builtin" if tried or not tools else synth
            info["synth"] = write_wav(timed, info["wav"], info["mid"], engine=engine)
    return [info for info, _, _ in results]

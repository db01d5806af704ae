"""Polyphonic generation (issue 14, no TensorFlow): `PolyGenerator` over a poly model folder, and the MIDI writer.

A poly model folder is an ordinary music model folder whose config.json says {"codec": {"mode": "poly", ...}} and
whose vocabulary is a PolyCodec's (app/music/polycodec.py). `MelodyGenerator.load(path)` returns a PolyGenerator
for such a folder, so `music generate` and the Python API work unchanged:

    gen = MelodyGenerator.load("models/chorales")
    pieces = gen.generate(n=2, bars=8, temperature=1.0, key="G", seed=1)
    write_melodies(pieces, "outputs/music")          # .mid (all notes), .wav, .png (the piano roll shows chords)

Decoding: the document's loop on the numpy stepper (x0 = -1, each chosen token fed back), one token per call, with
a grammar mask per row so that every sampled sequence is one `encode` can produce: in a step, pitches come from
high to low (no pitch twice), "=p" only for a pitch that sounded in the previous step, at most `max_voices` notes,
and "step" always allowed. Key and range constraints mask the "+p" tokens (every note starts with one, and "=p"
only continues a note that started), so they apply to every note. Generation stops for each piece after exactly
`steps` grid steps ("step" tokens), so --bars and --steps mean what they mean in melody mode.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.outputs import atomic_write
from app.core.sampling import SamplingOptions, sample_next
from app.errors import DataError, OptionError
from app.music.polycodec import STEP_ID, PolyCodec, canonical
from app.music.sampler import MelodyOptions, constraint_mask, prime

MAX_VOICES = 12  # notes sounding at one step in generated music (the sampler's default cap)


def write_notes_midi(notes: Sequence[tuple[int, int, int]], path: str | Path, *, steps_per_quarter: int = 4,
                     qpm: float = 120.0, program: int = 0, time_signature: Sequence = (4, 4),
                     velocity: int = 90) -> Path:
    """Notes (pitch, start step, end step) -> a one-track .mid file (written atomically). Returns the path."""
    import io

    import pretty_midi

    from app.music.midi_io import _resolution, midi_time_signatures

    pm = pretty_midi.PrettyMIDI(resolution=_resolution(steps_per_quarter), initial_tempo=float(qpm))
    step_s = 60.0 / (float(qpm) * steps_per_quarter)
    ts = list(time_signature)
    changes = [tuple(c) for c in ts] if ts and isinstance(ts[0], (list, tuple)) else [(0, int(ts[0]), int(ts[1]))]
    for step, num, den in midi_time_signatures(changes, steps_per_quarter):
        pm.time_signature_changes.append(pretty_midi.TimeSignature(int(num), int(den), step * step_s))
    inst = pretty_midi.Instrument(program=int(program), name="poly")
    for p, s, e in notes:
        inst.notes.append(pretty_midi.Note(velocity=int(velocity), pitch=int(p), start=s * step_s, end=e * step_s))
    pm.instruments.append(inst)
    buf = io.BytesIO()
    pm.write(buf)
    return atomic_write(path, buf.getvalue())


@dataclass(frozen=True, eq=False)
class GeneratedPiece:
    """One generated polyphonic piece: ids (tokens,) int32 of a PolyCodec, with what is needed to play it.
    Same fields as app.music.generate.GeneratedMelody; primer_steps is in grid steps."""

    ids: np.ndarray
    steps_per_quarter: int
    time_signature: tuple[int, int]
    qpm: float
    program: int = 0
    primer_steps: int = 0
    codec: PolyCodec = field(default=None, repr=False, compare=False)
    polyphonic: bool = True
    key: str | None = None  # the key sampled under (--key); None: the score writer estimates one
    transpose: int = 0  # semitones added to every pitch of `ids` (app.music.generate.in_model_key)

    def notes(self) -> list[tuple[int, int, int]]:
        """(pitch, start step, end step) per note, sorted by (start, -pitch), `transpose` applied."""
        notes = self.codec.decode_notes(self.ids)[0]
        return [(p + self.transpose, s, e) for p, s, e in notes] if self.transpose else notes

    @property
    def steps(self) -> int:
        return self.codec.steps_of(self.ids)

    def write_midi(self, path: str | Path) -> Path:
        return write_notes_midi(self.notes(), path, steps_per_quarter=self.steps_per_quarter, qpm=self.qpm,
                                program=self.program, time_signature=self.time_signature)


def grammar_tables(codec: PolyCodec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(token pitch (V,) with -1 -> 0 for "step", is_start (V,), is_cont (V,))."""
    tp = codec.token_pitch()
    start = codec.is_start()
    cont = (np.arange(codec.size) > codec.n_pitches)
    return np.maximum(tp, 0), start, cont


def generate_poly_ids(stepper, codec: PolyCodec, options: MelodyOptions, primer: np.ndarray | None = None,
                      max_voices: int = MAX_VOICES) -> list[np.ndarray]:
    """Pieces as token ids, each the primer then exactly `options.steps` new grid steps (module docstring)."""
    if options.beam > 1:
        raise OptionError("--beam is not available for polyphonic models (use sampling or --greedy)")
    if not 1 <= int(max_voices) <= 128:
        raise OptionError(f"max_voices must be 1..128, got {max_voices}")
    primer = np.zeros(0, np.int32) if primer is None else np.asarray(primer, np.int32)
    if primer.size and primer[-1] != STEP_ID:
        primer = np.concatenate([primer, [STEP_ID]]).astype(np.int32)
    n, target, V = options.n, options.steps, codec.size
    allowed_c = constraint_mask(codec.start_pitches(), options.key, options.min_pitch, options.max_pitch)
    tp, is_start, is_cont = grammar_tables(codec)
    is_step = np.arange(V) == STEP_ID
    start_ok = is_start & allowed_c
    rng = np.random.default_rng(options.seed)
    state, logits = prime(stepper, primer, n)
    prev = np.zeros((n, 128), bool)  # pitches sounding in the previous step
    if primer.size:
        notes, steps = codec.decode_notes(primer)
        for p, s, e in notes:
            if e == steps:
                prev[:, p] = True
    cur = np.zeros((n, 128), bool)
    last = np.full(n, 999)  # pitch of the last note token in this step (notes go from high to low)
    count = np.zeros(n, np.int64)
    done_steps = np.zeros(n, np.int64)
    limit = target * (max_voices + 1)
    out = np.zeros((n, limit), np.int32)
    rows = np.arange(n)
    plain = _plain(options.sampling)
    inv_t = 1.0 / options.sampling.temperature
    used = 0
    for i in range(limit):
        mask = (tp[None, :] < last[:, None]) & (start_ok[None, :] | (is_cont[None, :] & prev[:, tp]))
        mask &= (count < max_voices)[:, None]
        mask |= is_step[None, :]
        if plain:  # temperature sampling without top-k/top-p/min-p: one vectorised draw (the common case)
            z = np.where(mask, np.asarray(logits, np.float64) * inv_t, -np.inf)
            w = np.exp(z - z.max(axis=1, keepdims=True)).cumsum(axis=1)
            x = (w < (rng.random(n) * w[:, -1])[:, None]).sum(axis=1).astype(np.int64)
        else:
            x = sample_next(logits, rng, options.sampling, mask).astype(np.int64)
        out[:, i] = x
        used = i + 1
        stepped = x == STEP_ID
        note = ~stepped
        cur[rows[note], tp[x[note]]] = True
        last = np.where(note, tp[x], 999)
        count = np.where(note, count + 1, 0)
        if stepped.any():
            prev[stepped] = cur[stepped]
            cur[stepped] = False
        done_steps += stepped
        if (done_steps >= target).all():
            break
        logits, state = stepper.step(x, state)
    result = []
    for r in range(n):
        ends = np.flatnonzero(out[r, :used] == STEP_ID)
        stop = int(ends[target - 1]) + 1 if len(ends) >= target else used
        result.append(np.concatenate([primer, out[r, :stop]]).astype(np.int32))
    return result


def _plain(sampling: SamplingOptions) -> bool:
    return (not sampling.greedy and sampling.top_k is None and (sampling.top_p is None or sampling.top_p >= 1.0)
            and sampling.min_p is None)


class PolyGenerator:
    """A loaded polyphonic model: codec, grid and numpy stepper; the API of app.music.generate.MelodyGenerator."""

    polyphonic = True

    def __init__(self, folder):
        from app.music.archs.base import folder_arch, stepper_for

        self.folder, self.path, self.card = folder, folder.path, folder.card
        try:
            self.codec = PolyCodec.from_vocab(folder.vocab)
        except DataError as exc:
            raise DataError(f"{folder.path}: {exc}") from None
        arch, _ = folder_arch(folder.config)
        if arch.name != "basic":
            raise DataError(f"{folder.path}: polyphonic models use the basic arch, this one is {arch.name!r}")
        meta = folder.config.get("codec", {})
        ts = meta.get("time_signature") or (4, 4)
        self.steps_per_quarter = int(meta.get("steps_per_quarter", 4))
        self.time_signature = (int(ts[0]), int(ts[1]))
        self.qpm = float(meta.get("qpm") or 120.0)
        self.transposed_to = meta.get("transpose")  # "C": trained in C major / A minor (in_model_key)
        self.stepper = stepper_for(folder)
        self.note_pitch = self.codec.start_pitches()

    @property
    def bar_steps(self) -> int:
        from app.music.metre import steps_per_bar

        return steps_per_bar(self.steps_per_quarter, self.time_signature)

    def primer_ids(self, pitches=None, midi: str | Path | None = None) -> np.ndarray | None:
        """Primer as ids: `pitches` ("60 64 67": one quarter note each) or every pitched note of a MIDI file."""
        from app.music.generate import parse_pitches
        from app.music.melody import quantise

        if pitches is not None and midi is not None:
            raise OptionError("give either --primer or --primer-midi, not both")
        spq = self.steps_per_quarter
        if pitches is not None:
            notes = [(p, i * spq, (i + 1) * spq) for i, p in enumerate(parse_pitches(pitches))]
            source = "--primer"
        elif midi is not None:
            from app.music.limits import PRIMER_LIMITS
            from app.music.midi_io import read_midi

            if not Path(midi).is_file():
                raise DataError(f"primer MIDI {str(midi)!r} does not exist; pass a .mid file")
            piece = read_midi(midi, limits=PRIMER_LIMITS)
            notes = canonical(quantise([n for t in piece.tracks if not t.is_drum for n in t.notes], spq))
            if not notes:
                raise DataError(f"primer MIDI {str(midi)!r} has no pitched notes (only drums, or empty)")
            source = f"primer MIDI {str(midi)!r}"
        else:
            return None
        bad = sorted({p for p, _, _ in notes if not self.codec.min_pitch <= p <= self.codec.max_pitch})
        if bad:
            raise OptionError(f"{source} has pitches {bad[:8]} outside the model's range {self.codec.min_pitch}.."
                              f"{self.codec.max_pitch}; transpose the primer into that range")
        from app.music.sampler import MAX_STEPS

        ids = self.codec.encode(notes)
        if self.codec.steps_of(ids) > MAX_STEPS:
            raise OptionError(f"{source} is {self.codec.steps_of(ids)} steps long; the limit is {MAX_STEPS}")
        return ids

    def generate(self, n: int = 1, bars: int | None = None, *, steps: int | None = None,
                 temperature: float = 1.0, primer=None, primer_midi=None, primer_file=None, primer_tune=None,
                 key: str | None = None, qpm: float = 120.0, program: int = 0,
                 sampling: SamplingOptions | None = None, time_signature=None, max_voices: int = MAX_VOICES,
                 **options) -> list[GeneratedPiece]:
        """`n` pieces of `bars` bars (or `steps` grid steps); options as MelodyGenerator.generate (no --beam).
        A primer file must be MIDI (every pitched note is kept); ABC/MusicXML/kern primers are melody readers."""
        from app.music.archs.features import parse_time_signature
        from app.music.generate import check_playback, resolve_steps
        from app.music.metre import steps_per_bar

        if primer_tune is not None:
            raise OptionError("--primer-tune picks a tune of an ABC primer; polyphonic models take MIDI primers")
        if primer_file is not None:
            if Path(primer_file).suffix.lower() not in (".mid", ".midi"):
                raise OptionError(f"polyphonic models take a MIDI primer file (.mid), got {str(primer_file)!r}; "
                                  f"write the tune as MIDI, or use a melody model")
            if primer_midi is not None:
                raise OptionError("give one primer: --primer-file or --primer-midi")
            primer_midi = primer_file

        ts = self.time_signature if time_signature is None else parse_time_signature(time_signature)
        sampling_fields = {f.name for f in dataclasses.fields(SamplingOptions)}
        unknown = set(options) - sampling_fields - {f.name for f in dataclasses.fields(MelodyOptions)}
        if unknown:
            raise OptionError(f"unknown option(s) {', '.join(sorted(unknown))}")
        if sampling is None:
            sampling = SamplingOptions(temperature=temperature,
                                       **{k: v for k, v in options.items() if k in sampling_fields})
        check_playback(float(qpm), program)
        opts = MelodyOptions(n=n, steps=resolve_steps(bars, steps, steps_per_bar(self.steps_per_quarter, ts)),
                             sampling=sampling, key=key,
                             **{k: v for k, v in options.items() if k not in sampling_fields})
        primer_ids = self.primer_ids(primer, primer_midi)
        from app.music.generate import in_model_key

        opts, shift, primer_ids = in_model_key(self.transposed_to, opts, self.codec, primer_ids)
        rows = generate_poly_ids(self.stepper, self.codec, opts, primer_ids, max_voices)
        primer_steps = 0 if primer_ids is None else self.codec.steps_of(primer_ids)
        return [GeneratedPiece(r, self.steps_per_quarter, ts, float(qpm), int(program), primer_steps, self.codec,
                               key=key, transpose=shift) for r in rows]

"""The music object API (no TensorFlow): `MelodyGenerator.load(path).generate(...)` -> melodies; writers apart.

    gen = MelodyGenerator.load("models/folk")
    melodies = gen.generate(n=2, bars=8, temperature=0.9, key="G", seed=1, primer="67 69 71")
    write_melodies(melodies, "outputs/music")        # or write_midi / write_wav / write_png per melody

`MelodyGenerator` is the one loader of a music model folder (codec, grid, numpy stepper) used by `music generate`,
`music report`, `music evaluate` and the web page. A `GeneratedMelody` holds token ids (steps,) and its metadata:
steps_per_quarter, time_signature, qpm, program, primer_steps (the first primer_steps ids are the primer).

Primer: `primer` ("60 62 64" or a list of MIDI pitches, each lasting one quarter note), `primer_midi` (a MIDI file
whose melody line is read on the model's grid) or `primer_file` (.mid, .abc with `primer_tune` = its X: number,
.musicxml, .krn: app.music.primer_file; the melody then takes the file's time signature). The output starts with
the primer and continues it.

Scores: `write_abc`, `write_musicxml` and `write_svg` (verovio) write the melody's metre, its key (`key`, the one
sampled under, else estimated from the notes), spelled notes, ties, rests, tempo, and an exactly repeated 4-/8-bar
section once between repeat signs (fold=False writes it out); app.music.score holds the layout.
Length: `steps` (grid steps) or `bars` (bars of the model's time signature; default 8), at most
app.music.sampler.MAX_STEPS steps of new music.

Files (`write_melodies`): <out_dir>/<timestamp>_<k>.mid, .wav, .png (+ .abc, .musicxml, .svg as asked) for
k = 1..n; if any of them exists the stem gets a -2, -3 ... suffix, so nothing is ever overwritten. Stems are reserved atomically
(app.core.outputs.OutputSet, safe across processes) and a melody's files are written under temporary names and
published together: after a crash a melody has all its files or none (the next run removes the leftovers).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import ModelFolder, load_model_folder
from app.core.outputs import OutputSet, ensure_dir, timestamp
from app.core.paths import default_model
from app.core.sampling import SamplingOptions
from app.errors import DataError, ModelFolderError, OptionError
from app.music.metre import steps_per_bar
from app.music.sampler import MAX_STEPS, MelodyOptions, generate_ids

DEFAULT_OUT_DIR = "outputs/music"
MAX_BARS = 256
MAX_PARALLEL_RENDERS = 8  # FluidSynth processes started at once; later melodies render one by one


@dataclass(frozen=True, eq=False)
class GeneratedMelody:
    """One generated melody: ids (steps,) int32 on the model's grid, with what is needed to play it."""

    ids: np.ndarray
    steps_per_quarter: int
    time_signature: tuple[int, int]
    qpm: float
    program: int = 0
    primer_steps: int = 0
    codec: object = field(default=None, repr=False, compare=False)  # app.music.codec.MelodyCodec
    key: str | None = None  # the key sampled under (--key); None: the score writers estimate one from the notes
    transpose: int = 0  # semitones added to every pitch of `ids` (a C-major/A-minor model asked for another key)

    def melody(self):
        """As an app.music.melody.Melody (events with the metadata), `transpose` applied."""
        m = self.codec.decode(self.ids, steps_per_quarter=self.steps_per_quarter, qpm=self.qpm,
                              time_signature=self.time_signature, program=self.program)
        if self.transpose:
            m = dataclasses.replace(m, events=tuple(e + self.transpose if e >= 0 else e for e in m.events))
        return m

    def notes(self) -> list[tuple[int, int, int]]:
        """(pitch, start step, end step) per note."""
        return self.melody().notes()


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


def in_model_key(transposed_to: str | None, options: MelodyOptions, codec, primer: np.ndarray | None
                 ) -> tuple[MelodyOptions, int, np.ndarray | None]:
    """Where the model was trained on pieces transposed to C major / A minor (config.json codec.transpose "C"),
    `--key X` samples X's mode on C or A (app.music.scales.home_key) and the result is moved to X afterwards: masking
    a C-major model to G major would give it a scale it never saw. Returns (options in the model's keys: key and
    pitch range moved, the semitones to add to the sampled pitches, the primer (in X) moved into the model's key).
    Any other model, or no key: unchanged, 0."""
    if transposed_to != "C" or options.key is None:
        return options, 0, primer
    from app.music.scales import home_key

    model_key, shift = home_key(options.key)
    if not shift:  # the asked key is in the model's own keys (C, Am, A dorian ... or chromatic)
        return options, 0, primer
    moved = dataclasses.replace(
        options, key=model_key,
        min_pitch=None if options.min_pitch is None else min(127, max(0, options.min_pitch - shift)),
        max_pitch=None if options.max_pitch is None else min(127, max(0, options.max_pitch - shift)))
    if primer is not None:
        primer = codec.transpose_ids(np.asarray(primer), -shift)
        if primer is None:
            raise OptionError(f"the model writes in C major / A minor and moves the result to {options.key}; the "
                              f"primer moved by {-shift:+d} semitones into {model_key} leaves the model's pitch range "
                              f"{codec.min_pitch}..{codec.max_pitch}; give a primer nearer the middle of that range")
    return moved, shift, primer


def note_pitches(codec) -> np.ndarray:
    """MIDI pitch of each token id, -1 for hold and rest."""
    from app.music.codec import HOLD_ID, REST_ID

    out = np.full(codec.size, -1, np.int64)
    notes = [i for i in range(codec.size) if i not in (HOLD_ID, REST_ID)]
    out[notes] = [int(codec.vocab.tokens[i]) for i in notes]
    return out


def check_playback(qpm: float, program: int) -> None:
    if int(program) != program or not 0 <= program <= 127:
        raise OptionError(f"--program must be a General MIDI program 0..127, got {program}")
    if not 20 <= qpm <= 400:
        raise OptionError(f"--qpm must be 20..400 quarter notes per minute, got {qpm}")


class MelodyGenerator:
    """A loaded melody model: codec, grid (steps per quarter, time signature, qpm) and the numpy stepper."""

    def __init__(self, folder: ModelFolder):
        from app.music.codec import MelodyCodec

        self.folder = folder
        self.path = folder.path
        self.card = folder.card
        try:
            self.codec = MelodyCodec.from_vocab(folder.vocab)
        except DataError as exc:
            raise DataError(f"{folder.path}: {exc}") from None
        meta = folder.config.get("codec", {})
        ts = meta.get("time_signature") or (4, 4)
        self.steps_per_quarter = int(meta.get("steps_per_quarter", 4))
        self.time_signature = (int(ts[0]), int(ts[1]))
        self.qpm = float(meta.get("qpm") or 120.0)  # the corpus median, for information
        self.transposed_to = meta.get("transpose")  # "C": trained in C major / A minor (in_model_key)
        from app.music.archs.base import folder_arch, stepper_for

        self.stepper = stepper_for(folder)  # in the model's metre; generate(time_signature=...) makes another
        self._steppers = {self.time_signature: self.stepper}  # one per metre asked for (stepper_in)
        self.arch, settings = folder_arch(folder.config)
        self.note_pitch = note_pitches(self.codec)
        self.tune_kinds = tuple(getattr(settings, "tune_classes", ()))
        self.tune_prior = None
        if self.tune_kinds:  # the training tunes' class frequencies per metre, which generation draws from
            from app.music.archs.features import check_tune_prior

            try:
                self.tune_prior = check_tune_prior(folder.config["arch"].get("tune_prior"), self.tune_kinds)
            except OptionError as exc:
                raise ModelFolderError(f"{folder.path}/config.json: {exc}") from None

    @classmethod
    def load(cls, path: str | Path | None = None) -> "MelodyGenerator":
        """Load a music model folder (default: the shipped models/folk, see app.core.paths). A polyphonic model
        folder (config.json codec.mode "poly") gives an app.music.polygen.PolyGenerator, with the same API."""
        folder = load_model_folder(default_model("music") if path is None else path, domain="music")
        if folder.config.get("codec", {}).get("mode") == "poly":
            from app.music.polygen import PolyGenerator

            return PolyGenerator(folder)
        return cls(folder)

    @property
    def metre_conditioned(self) -> bool:
        """Whether the model takes the time signature as an input (writes any metre), or knows only its own."""
        return self.arch.metre_input

    @property
    def bar_steps(self) -> int:
        return steps_per_bar(self.steps_per_quarter, self.time_signature)

    def primer_ids(self, pitches: str | Sequence[int] | None = None, midi: str | Path | None = None,
                   file: str | Path | None = None, tune: str | int | None = None) -> np.ndarray | None:
        """Primer as token ids on the model's grid; errors name the model's pitch range. `file`: a .mid, .abc
        (tune: its X: number, default the first tune), .musicxml or .krn file (app.music.primer_file)."""
        return self.read_primer(pitches, midi, file, tune)[0]

    def read_primer(self, pitches: str | Sequence[int] | None = None, midi: str | Path | None = None,
                    file: str | Path | None = None, tune: str | int | None = None
                    ) -> tuple[np.ndarray | None, tuple[int, int] | None]:
        """(primer ids or None, the primer file's time signature or None); see primer_ids."""
        from app.music.melody import Melody

        if sum(x is not None for x in (pitches, midi, file)) > 1:
            raise OptionError("give one primer: --primer, --primer-file or --primer-midi")
        if tune is not None and file is None:
            raise OptionError("--primer-tune picks a tune of an ABC --primer-file; give --primer-file too")
        primer_ts = None
        if file is not None:
            from app.music.primer_file import read_primer

            melody = read_primer(file, self.steps_per_quarter, tune)
            primer_ts = tuple(melody.time_signature)
            midi, source = None, f"primer file {str(file)!r}"
        spq, codec = self.steps_per_quarter, self.codec
        if file is not None:
            pass
        elif pitches is not None:
            ps = parse_pitches(pitches)
            melody = Melody.from_notes([(p, i * spq, (i + 1) * spq) for i, p in enumerate(ps)],
                                       steps_per_quarter=spq)
            source = "--primer"
        elif midi is not None:
            from app.music.midi_io import read_melody

            if not Path(midi).is_file():
                raise DataError(f"primer MIDI {str(midi)!r} does not exist; pass a .mid file with a melody")
            from app.music.limits import PRIMER_LIMITS

            melody = read_melody(midi, steps_per_quarter=spq, limits=PRIMER_LIMITS)
            if not melody.notes():
                raise DataError(f"primer MIDI {str(midi)!r} has no melody notes (only drums, or empty)")
            source = f"primer MIDI {str(midi)!r}"
        else:
            return None, None
        bad = sorted({p for p, _, _ in melody.notes() if not codec.min_pitch <= p <= codec.max_pitch})
        if bad:
            raise OptionError(f"{source} has pitches {bad[:8]} outside the model's range {codec.min_pitch}.."
                              f"{codec.max_pitch}; transpose the primer into that range")
        ids = codec.encode(melody)
        if len(ids) > MAX_STEPS:
            raise OptionError(f"{source} is {len(ids)} steps long; the limit is {MAX_STEPS} steps")
        return ids, primer_ts

    def stepper_in(self, time_signature: tuple[int, int]):
        """The numpy stepper for melodies in `time_signature` (metre-conditioned archs take it as an input), built
        once per metre: the report asks for the same few metres batch after batch."""
        from app.music.archs.base import stepper_for

        ts = tuple(time_signature)
        if ts not in self._steppers:
            self._steppers[ts] = stepper_for(self.folder, ts)
        return self._steppers[ts]

    def generate_ids(self, options: MelodyOptions, primer: np.ndarray | None = None,
                     time_signature: tuple[int, int] | None = None) -> np.ndarray:
        """Token ids (n, len(primer) + steps) for fully specified options (the report's entry). A model conditioned
        on tune classes gets them per melody (`tune_classes_for`) and generates each class's melodies as a batch."""
        ts = tuple(time_signature or self.time_signature)
        stepper = self.stepper if time_signature is None else self.stepper_in(ts)
        if not self.tune_kinds:
            return generate_ids(stepper, self.note_pitch, options, primer)
        classes = self.tune_classes_for(options, primer, ts)
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(classes):
            groups.setdefault(c, []).append(i)
        out = None
        for g, (c, rows) in enumerate(sorted(groups.items())):
            stepper.set_tune(c)
            seed = None if options.seed is None else (options.seed + g) % 2**63
            ids = generate_ids(stepper, self.note_pitch, dataclasses.replace(options, n=len(rows), seed=seed),
                               primer)
            if out is None:
                out = np.empty((options.n, ids.shape[1]), ids.dtype)
            out[rows] = ids
        return out

    def tune_classes_for(self, options: MelodyOptions, primer: np.ndarray | None,
                         time_signature: tuple[int, int]) -> list[tuple[int, ...]]:
        """One tuple of tune classes per melody: a primer of 8 notes or more gives its own to all; otherwise they
        are drawn from the training tunes of the metre (app.music.archs.features.draw_tune_classes, seeded by
        options.seed), with the scale (and tonic) class set by --key when the key's notes are one major-scale
        collection."""
        from app.music.archs.features import FIRST_NOTE_ID, collection_fit, draw_tune_classes, tune_classes
        from app.music.scales import parse_key, pitch_mask

        if primer is not None and int((np.asarray(primer) >= FIRST_NOTE_ID).sum()) >= 8:
            return [tune_classes(primer, self.tune_kinds, self.steps_per_quarter)] * options.n
        fixed = {}
        if options.key is not None and "scale" in self.tune_kinds:
            notes = self.note_pitch >= 0
            ids = np.flatnonzero(notes & pitch_mask(options.key, self.note_pitch))
            overlap = collection_fit(np.bincount((ids - FIRST_NOTE_ID) % 12, minlength=12) > 0)
            if (overlap == overlap.max()).sum() == 1:  # the key's notes are (mostly) one collection: that scale class
                k = int(np.argmax(overlap))
                fixed[self.tune_kinds.index("scale")] = k
                if "tonic" in self.tune_kinds:  # and its tonic, counted like the classes, from the lowest pitch
                    lowest = int(self.note_pitch[FIRST_NOTE_ID])
                    fixed[self.tune_kinds.index("tonic")] = (parse_key(options.key)[0] - lowest - k) % 12
        rng = np.random.default_rng(None if options.seed is None else [options.seed, 1])  # apart from sampling's
        label = f"{time_signature[0]}/{time_signature[1]}"
        return draw_tune_classes(self.tune_prior, label, options.n, rng, fixed)

    def generate(self, n: int = 1, bars: int | None = None, *, steps: int | None = None,
                 temperature: float = 1.0, primer: str | Sequence[int] | None = None,
                 primer_midi: str | Path | None = None, primer_file: str | Path | None = None,
                 primer_tune: str | int | None = None, key: str | None = None, qpm: float = 120.0,
                 program: int = 0, sampling: SamplingOptions | None = None,
                 time_signature: str | Sequence[int] | None = None, **options) -> list[GeneratedMelody]:
        """`n` melodies of `bars` bars (or `steps` grid steps). Sampling options (temperature, top_k, top_p, greedy,
        ...) are those of SamplingOptions, or a whole `sampling`; the rest (beam, seed, min_pitch, max_pitch) those
        of MelodyOptions. qpm: tempo of the result in quarter notes per minute. time_signature: "6/8" or (6, 8)
        (default: a primer file's, else the model's most common metre); bars are bars of it. primer_file: a .mid,
        .abc (primer_tune: its X: number), .musicxml or .krn file whose melody is continued."""
        from app.music.archs.features import parse_time_signature

        primer_ids, primer_ts = self.read_primer(primer, primer_midi, primer_file, primer_tune)
        ts = (primer_ts or self.time_signature) if time_signature is None else parse_time_signature(time_signature)
        sampling_fields = {f.name for f in dataclasses.fields(SamplingOptions)}
        unknown = set(options) - sampling_fields - {f.name for f in dataclasses.fields(MelodyOptions)}
        if unknown:
            raise OptionError(f"unknown option(s) {', '.join(sorted(unknown))}")
        if sampling is None:
            sampling = SamplingOptions(temperature=temperature,
                                       **{k: v for k, v in options.items() if k in sampling_fields})
        qpm = float(qpm)
        check_playback(qpm, program)
        opts = MelodyOptions(n=n, steps=resolve_steps(bars, steps, steps_per_bar(self.steps_per_quarter, ts)),
                             sampling=sampling, key=key,
                             **{k: v for k, v in options.items() if k not in sampling_fields})
        opts, shift, primer_ids = in_model_key(self.transposed_to, opts, self.codec, primer_ids)
        ids = self.generate_ids(opts, primer_ids, ts)
        primer_steps = 0 if primer_ids is None else len(primer_ids)
        return [GeneratedMelody(row, self.steps_per_quarter, ts, qpm, int(program), primer_steps,
                                self.codec, key=key, transpose=shift) for row in ids]


# --- writers -------------------------------------------------------------------------------------------------------
def write_midi(melody: GeneratedMelody, path: str | Path) -> Path:
    """The melody as a standard MIDI file (one instrument, its program, tempo and time signature)."""
    from app.music.midi_io import write_midi as write_melody_midi

    if getattr(melody, "polyphonic", False):  # an app.music.polygen.GeneratedPiece: every note, chords included
        return melody.write_midi(path)
    write_melody_midi(melody.melody(), path)
    return Path(path)


def write_wav(melody: GeneratedMelody, path: str | Path, midi_path: str | Path | None = None,
              synth: str = "auto") -> str:
    """Render to a WAV (FluidSynth from `midi_path` when installed and synth allows, else the built-in
    synthesiser). Returns the engine used."""
    from app.music.synth import write_wav as render

    step_s = 60.0 / (melody.qpm * melody.steps_per_quarter)
    timed = [(p, s * step_s, e * step_s, 90) for p, s, e in melody.notes()]
    return render(timed, path, None if midi_path is None else str(midi_path), engine=synth)


def write_png(melody: GeneratedMelody, path: str | Path, title: str = "") -> Path:
    """Piano roll of the melody (bars of its time signature, the primer shaded)."""
    from app.music.pianoroll import render_png

    spq, ts = melody.steps_per_quarter, melody.time_signature
    render_png([(p, s / spq, e / spq) for p, s, e in melody.notes()], path, beats_per_bar=4.0 * ts[0] / ts[1],
               primer_end=melody.primer_steps / spq, title=title)
    return Path(path)


def write_abc(melody: GeneratedMelody, path: str | Path, *, title: str = "Generated melody", fold: bool = True,
              number: int = 1) -> Path:
    """The melody as an ABC tune (app.music.score): its metre, key (sampled under or estimated), tempo; ties across
    bar lines, rests filling the bars; with fold, an exactly repeated 4-/8-bar section once between |: :|."""
    from app.music.score import abc_text, melody_layout

    Path(path).write_text(abc_text(melody_layout(melody, fold=fold), title=title, number=number),
                          encoding="utf-8")
    return Path(path)


def write_musicxml(melody: GeneratedMelody, path: str | Path, *, title: str = "Generated melody",
                   fold: bool = True) -> Path:
    """The melody as a MusicXML 4.0 score (the same bars, key and repeats as write_abc); a polyphonic piece on a
    grand staff (app.music.polyscore)."""
    Path(path).write_text(_musicxml(melody, title, fold), encoding="utf-8")
    return Path(path)


def _musicxml(melody, title: str, fold: bool) -> str:
    if getattr(melody, "polyphonic", False):
        from app.music.polyscore import piece_musicxml_text

        return piece_musicxml_text(melody, title=title, key=melody.key)
    from app.music.score import melody_layout, musicxml_text

    return musicxml_text(melody_layout(melody, fold=fold), title=title, program=melody.program)


def write_svg(melody: GeneratedMelody, path: str | Path, *, title: str = "Generated melody",
              fold: bool = True) -> Path:
    """The melody engraved by verovio (app.music.engrave) as one SVG page: clef, key and time signature, one
    measure per written bar (a polyphonic piece: a grand staff)."""
    from app.music.engrave import svg_from_musicxml

    Path(path).write_text(svg_from_musicxml(_musicxml(melody, title, fold)), encoding="utf-8")
    return Path(path)


def write_scores(melody: GeneratedMelody, paths: dict[str, str | Path], *, title: str = "Generated melody",
                 fold: bool = True) -> None:
    """Write the score formats named in `paths` ("abc", "musicxml", "svg" -> path) from one layout (ABC only for
    melodies)."""
    if "abc" in paths:
        from app.music.score import abc_text, melody_layout

        if getattr(melody, "polyphonic", False):
            raise OptionError("ABC is written for melody models; a polyphonic piece gets .musicxml and .svg")
        Path(paths["abc"]).write_text(abc_text(melody_layout(melody, fold=fold), title=title), encoding="utf-8")
    if "musicxml" in paths or "svg" in paths:
        xml = _musicxml(melody, title, fold)
        if "musicxml" in paths:
            Path(paths["musicxml"]).write_text(xml, encoding="utf-8")
        if "svg" in paths:
            from app.music.engrave import svg_from_musicxml

            Path(paths["svg"]).write_text(svg_from_musicxml(xml), encoding="utf-8")


SCORE_FORMATS = ("abc", "musicxml", "svg")


def write_melodies(melodies: Sequence[GeneratedMelody], out_dir: str | Path = DEFAULT_OUT_DIR, *, wav: bool = True,
                   png: bool = True, synth: str = "auto", title: str = "", scores: Sequence[str] = (),
                   fold: bool = True) -> list[dict]:
    """Write .mid (+ .wav, .png, and the score formats in `scores`: abc, musicxml, svg) per melody, FluidSynth
    renders running in the background while the piano rolls and scores are drawn. fold: write exactly repeated
    4-/8-bar sections once between repeat signs in the scores (the .mid and .wav always play in full).
    Polyphonic pieces (app.music.polygen) get no .abc: their scores are MusicXML/SVG on a grand staff.
    Returns one dict per melody: mid/wav/png/abc/musicxml/svg paths, steps, primer_steps, notes, ids, synth."""
    scores = tuple(dict.fromkeys(scores))
    bad = [s for s in scores if s not in SCORE_FORMATS]
    if bad:
        raise OptionError(f"unknown score format(s) {', '.join(bad)}; expected some of {', '.join(SCORE_FORMATS)}")
    if "abc" in scores and any(getattr(m, "polyphonic", False) for m in melodies):
        scores = tuple(s for s in scores if s != "abc")  # ABC is written for melodies; pieces get MusicXML/SVG
    for m in melodies:
        if not m.notes():
            raise DataError("a generated melody has no notes (only holds and rests); try another seed, a higher "
                            "temperature or more bars")
    folder = ensure_dir(out_dir)
    stamp = timestamp()
    suffixes = (".mid",) + ((".wav",) if wav else ()) + ((".png",) if png else ()) + tuple("." + f for f in scores)
    results, renders, sets = [], [], []
    tools = None
    if wav and synth != "builtin":
        from app.music.synth import fluidsynth_available

        tools = fluidsynth_available()
    try:
        # 1. every .mid, starting the FluidSynth renders in the background (a few at a time)
        for k, m in enumerate(melodies, start=1):
            out = OutputSet.reserve(folder, f"{stamp}_{k}", suffixes)
            sets.append(out)
            write_midi(m, out.temp(".mid"))
            info = {"mid": str(out.path(".mid")), "steps": int(getattr(m, "steps", len(m.ids))),
                    "primer_steps": m.primer_steps,
                    "notes": len(m.notes()), "ids": [int(i) for i in m.ids]}
            if m.transpose:
                info["transpose"] = m.transpose  # ids are in the model's key; the files are moved by this
            if wav:
                info["wav"] = str(out.path(".wav"))
            results.append((info, out, m))
        if tools:
            from app.music.synth import FluidRender

            renders = [FluidRender(out.temp(".mid"), out.temp(".wav"), tools) if k < MAX_PARALLEL_RENDERS else None
                       for k, (_, out, _) in enumerate(results)]
        # 2. piano rolls while FluidSynth works
        if png:
            for k, (info, out, m) in enumerate(results, start=1):
                write_png(m, out.temp(".png"), title=f"{title} #{k}  ({info['notes']} notes, {m.qpm:g} qpm)")
                info["png"] = str(out.path(".png"))
        for k, (info, out, m) in enumerate(results, start=1):
            if scores:
                name = f"{title} #{k}".strip() if title else f"Generated melody #{k}"
                write_scores(m, {f: out.temp("." + f) for f in scores}, title=name, fold=fold)
                info.update({f: str(out.path("." + f)) for f in scores})
        # 3. WAVs: finish the renders; any that failed or were silent (or were not started) use write_wav
        if wav:
            for k, (info, out, m) in enumerate(results):
                tried = bool(renders) and renders[k] is not None
                if tried and renders[k].finish():
                    info["synth"] = "fluidsynth"
                    continue
                engine = "builtin" if tried or not tools else synth
                info["synth"] = write_wav(m, out.temp(".wav"), out.temp(".mid"), synth=engine)
        # 4. each melody's files appear together
        for _, out, _ in results:
            out.publish()
    finally:
        for r in renders:
            if r is not None:
                r.stop()
        for out in sets:
            out.discard()  # a no-op for published sets
    return [info for info, _, _ in results]


def generate_files(model: str | Path | None = None, out_dir: str | Path = DEFAULT_OUT_DIR, *, wav: bool = True,
                   png: bool = True, synth: str = "auto", scores: Sequence[str] = (), fold: bool = True,
                   **options) -> list[dict]:
    """Load, generate (keyword options of MelodyGenerator.generate) and write: `music generate` in one call."""
    gen = MelodyGenerator.load(model)
    melodies = gen.generate(**options)
    return write_melodies(melodies, out_dir, wav=wav, png=png, synth=synth, title=gen.path.name, scores=scores,
                          fold=fold)

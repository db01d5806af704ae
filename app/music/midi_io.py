"""MIDI files: read them into `RawPiece` (quarter-note times), write a `Melody` as a one-track .mid.

Reading (app.music.smf, bounded by app.music.limits) works in ticks, not seconds: onset in quarters = tick /
resolution, so tempo changes never move a note on the grid. The first tempo (qpm) is kept as metadata (120 qpm if
absent); every time signature is kept as the piece's metre (`RawPiece.metre`, 4/4 if absent), and a written melody
carries all of its time signatures.
"""

from __future__ import annotations

from pathlib import Path

from app.core.outputs import atomic_write
from app.errors import DataError
from app.music.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits, check_notes
from app.music.melody import ExtractConfig, Melody, RawPiece, melody_line
from app.music.metre import steps_per_bar


def _resolution(steps_per_quarter: int) -> int:
    """Ticks per quarter: a multiple of steps_per_quarter so every grid step is a whole number of ticks."""
    return 480 if 480 % steps_per_quarter == 0 else 120 * steps_per_quarter


def melody_to_midi(melody: Melody, *, velocity: int = 90):
    """Melody -> pretty_midi.PrettyMIDI: one instrument with `melody.program`, tempo `melody.qpm`, and the
    melody's time signature. Step t starts at t * 60 / (qpm * steps_per_quarter) seconds."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=_resolution(melody.steps_per_quarter), initial_tempo=float(melody.qpm))
    step_s = 60.0 / (float(melody.qpm) * melody.steps_per_quarter)
    for step, num, den in midi_time_signatures(melody.metre_changes(), melody.steps_per_quarter):
        pm.time_signature_changes.append(pretty_midi.TimeSignature(int(num), int(den), step * step_s))
    inst = pretty_midi.Instrument(program=int(melody.program), name="melody")
    for p, s, e in melody.notes():
        inst.notes.append(pretty_midi.Note(velocity=int(velocity), pitch=int(p), start=s * step_s, end=e * step_s))
    pm.instruments.append(inst)
    return pm


def midi_time_signatures(changes, spq: int) -> list[tuple[int, int, int]]:
    """Metre changes -> (step >= 0, numerator, denominator) time-signature events for a MIDI file.

    A first change before step 0 (step 0 inside a bar: a pickup) becomes a short first bar, e.g. 1/4 for a
    one-beat pickup in 4/4, then the metre itself, so the file's bar lines fall where the melody's do. A pickup
    that no power-of-two denominator can express (a fraction of a grid step) is written as the metre at 0."""
    ordered = sorted((int(s), int(n), int(d)) for s, n, d in changes)
    live = [c for c in ordered if c[0] <= 0][-1:] or [(0, *ordered[0][1:])]
    out: list[tuple[int, int, int]] = []
    for s, num, den in live + [c for c in ordered if c[0] > 0]:
        if s >= 0:
            out.append((s, num, den))
            continue
        bar = steps_per_bar(spq, (num, den))
        pickup = bar - (-s) % bar  # steps until the first full bar starts
        if pickup == bar:
            out.append((0, num, den))
            continue
        for d in sorted({den, 4, 8, 16, 32, 64}):
            if (pickup * d) % (4 * spq) == 0:
                out += [(0, pickup * d // (4 * spq), d), (pickup, num, den)]
                break
        else:
            out.append((0, num, den))
    out.sort()
    return [c for k, c in enumerate(out) if k + 1 == len(out) or out[k + 1][0] != c[0]]  # later one wins


def write_midi(melody: Melody, path: str | Path, *, velocity: int = 90) -> Path:
    """Write `melody` to a .mid file atomically (temporary name, then rename). Returns the path."""
    import io

    buf = io.BytesIO()
    melody_to_midi(melody, velocity=velocity).write(buf)
    return atomic_write(path, buf.getvalue())


def read_midi(path: str | Path, data: bytes | None = None, limits: ReadLimits = DEFAULT_LIMITS) -> RawPiece:
    """Read a .mid/.midi file (or its bytes, if given) -> RawPiece, within `limits` (app.music.limits).

    Raises DataError naming the reason (not MIDI, truncated at byte N, too long, too many notes, too large).
    """
    from app.music.smf import SmfError, read_smf
    from app.music.sources import _read_bounded

    p = Path(path)
    try:
        if data is None:
            data = _read_bounded(str(p), limits)
        if not data:
            raise DataError(f"{p}: empty file (0 bytes)")
        return read_smf(data, p.name, limits)
    except (SmfError, LimitExceeded) as exc:
        raise DataError(f"{p}: {exc.reason} ({exc.detail})") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror})") from None


def read_melody(path: str | Path, steps_per_quarter: int = 4, track: int | str | None = None,
                limits: ReadLimits = DEFAULT_LIMITS) -> Melody:
    """A MIDI file -> its melody line, exactly as on the grid: track choice, quantisation and skyline only (no
    splitting, no trimming, no range handling). For a file written by `write_midi` this returns the canonical
    form of the melody that was written. `limits` bounds the reading (pass PRIMER_LIMITS for a primer)."""
    piece = read_midi(path, limits=limits)
    try:
        check_notes([n for t in piece.tracks for n in t.notes], limits)
    except LimitExceeded as exc:
        raise DataError(f"{path}: {exc.reason} ({exc.detail})") from None
    cfg = ExtractConfig(steps_per_quarter=steps_per_quarter, melody_track=track)
    line, res = melody_line(piece, cfg, limits)
    if res.skip:
        raise DataError(f"{path}: {res.skip} ({res.detail})")
    program = piece.tracks[res.track].program if res.track is not None else 0
    metre = tuple((int(round(q * steps_per_quarter)), n, d) for q, n, d in piece.metre)
    return Melody.from_notes(line, steps_per_quarter=steps_per_quarter, qpm=piece.qpm,
                             time_signature=piece.time_signature, program=program, metre=metre)

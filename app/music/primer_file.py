"""A primer given as a file: .mid/.midi, .abc (the first tune or the tune with a given X: number), .musicxml/.xml/
.mxl or .krn, read by the corpus's own readers (app.music.sources.read_file, app.music.midi_io.read_melody) within
PRIMER_LIMITS (size, notes, length, parse time: checked before the music is built), reduced to its melody line on
the model's grid. Every problem is a DataError naming the file and what is wrong.

A tune that starts with a pickup (an anacrusis: its first bar line after step 0) is returned with leading silence,
so that its bar lines fall where the melody's bars do.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import DataError
from app.music.melody import Melody

SUFFIXES = (".mid", ".midi", ".abc", ".musicxml", ".xml", ".mxl", ".krn")


def read_primer(path: str | Path, steps_per_quarter: int = 4, tune: str | int | None = None,
                label: str | None = None) -> Melody:
    """The melody line of a primer file on a grid of `steps_per_quarter` steps per quarter; its metre (time
    signature at step 0, after any leading silence added for a pickup) in `time_signature`.

    tune: for .abc files, the X: number of the tune to read (default: the first tune). label: how the file is named
    in messages (default: the path as given)."""
    from app.music.limits import PRIMER_LIMITS, LimitExceeded
    from app.music.melody import ExtractConfig, melody_line
    from app.music.sources import SourceFile, _decode_text, _read_bounded, read_file, split_abc

    name = label or str(path)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"primer file {name!r} has the extension {suffix or '(none)'}; expected one of "
                        f"{', '.join(SUFFIXES)}")
    if not p.is_file():
        raise DataError(f"primer file {name!r} does not exist (or is not a regular file); pass a MIDI, ABC, "
                        f"MusicXML or kern file")
    if tune is not None and suffix != ".abc":
        raise DataError(f"a tune number (X:{tune}) only applies to an ABC file, not {name!r}")
    if suffix in (".mid", ".midi"):
        from app.music.midi_io import read_melody

        melody = read_melody(p, steps_per_quarter=steps_per_quarter, limits=PRIMER_LIMITS)
        if not melody.notes():
            raise DataError(f"primer file {name!r} has no melody notes (only drums, or empty)")
        return _on_bar_lines(melody)
    src = SourceFile(str(p), p.name)
    tunes = None
    if suffix == ".abc":
        try:
            found = split_abc(_decode_text(_read_bounded(str(p), PRIMER_LIMITS)))
        except LimitExceeded as exc:
            raise DataError(f"primer file {name!r}: {exc.reason} ({exc.detail})") from None
        except OSError as exc:
            raise DataError(f"primer file {name!r}: cannot read ({exc.strerror or exc})") from None
        if not found:
            raise DataError(f"primer file {name!r} holds no ABC tune (expected lines such as X:1, K:G and notes)")
        ids = [t for t, _ in found]
        if tune is None:
            k = 0
        elif str(tune).strip() in ids:
            k = ids.index(str(tune).strip())
        else:
            shown = ", ".join(ids[:12]) + (" ..." if len(ids) > 12 else "")
            raise DataError(f"primer file {name!r} has no tune X:{tune}; its tunes are X: {shown}")
        tunes = (k, k + 1)
    pieces, skips = read_file(src, tunes=tunes, limits=PRIMER_LIMITS)
    if not pieces:
        why = f"{skips[0].reason} ({skips[0].detail})" if skips else "no music found"
        raise DataError(f"primer file {name!r} cannot be used: {why}")
    piece = pieces[0]
    line, res = melody_line(piece, ExtractConfig(steps_per_quarter=steps_per_quarter), PRIMER_LIMITS)
    if res.skip:
        raise DataError(f"primer file {name!r} cannot be used: {res.skip} ({res.detail})")
    spq = steps_per_quarter
    metre = tuple((int(round(q * spq)), int(n), int(d)) for q, n, d in piece.metre if n >= 1 and d >= 1) \
        or ((0, *map(int, piece.time_signature)),)
    melody = Melody.from_notes(line, steps_per_quarter=spq, qpm=float(piece.qpm),
                               time_signature=tuple(metre[0][1:]), metre=metre)
    return _on_bar_lines(melody)


def _on_bar_lines(melody: Melody) -> Melody:
    """The melody with leading silence so that step 0 starts a bar of its first time signature (a pickup of k
    steps gets bar - k steps of silence before it); its `time_signature` is that first one, `metre` cleared."""
    from app.music.melody import HOLD
    from app.music.metre import bar_grid

    changes = sorted(melody.metre_changes())
    first = ([c for c in changes if c[0] <= 0] or changes)[-1]
    _, pos = bar_grid(1, melody.steps_per_quarter, changes)
    pad = int(pos[0]) if len(pos) else 0
    events = (HOLD,) * pad + tuple(melody.events)
    return Melody(events=events, steps_per_quarter=melody.steps_per_quarter, qpm=melody.qpm,
                  time_signature=(first[1], first[2]), program=melody.program)

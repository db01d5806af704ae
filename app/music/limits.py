"""Bounds on the work one input file may cause, checked *before* the work is done (issue 12).

A tiny hostile file can describe an absurd amount of music: a 39-byte ABC tune with one note 99,999,999 eighths
long, a 101-byte MIDI file whose single note lasts 9,999,990 ticks at 1 tick per quarter, a 96 KB MIDI file with
20,000 notes at one instant. Every reader checks these limits from cheap facts (file size, event counts, the note
list in quarter notes) before building anything proportional to the music's length (grids, token arrays), and turns
a breach into a clear skip reason / DataError that names the limit and how to raise it.

All limits live in `ReadLimits` (one field each, help text and bounds in the field metadata). The defaults keep every
tune of the default corpus (music21 oneills1850, airdsAirs, ryansMammoth; a build with these limits keeps 4,248 of
4,248 pieces, 916,813 tokens, as before) with a margin; measured on that corpus: largest file 75,976 bytes, most tunes
in a file 200 (airdsAirs/book5.abc), largest tune 2,439 characters, most notes in a file 19,688, most tokens from a
file 44,476, longest segment 1,828 steps (457 quarter notes), longest note or rest 24 steps (6 quarter notes).
`PRIMER_LIMITS` are tighter, for a primer file given to `music generate` (read while a user waits).
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass, field

from app.core.config import check_range


def _limit(default, help: str, lo, hi):
    return field(default=default, metadata={"help": help, "bounds": (lo, hi)})


@dataclass(frozen=True)
class ReadLimits:
    """Per-file bounds for reading music (units in each field's help). Validated on creation."""

    max_file_bytes: int = _limit(16 << 20, "largest music file read, in bytes (checked from the file size before "
                                           "reading)", 1, 1 << 34)
    max_score_bytes: int = _limit(4 << 20, "largest MusicXML / Humdrum file read, in bytes (music21 needs seconds "
                                           "per MB)", 1, 1 << 34)
    max_notes: int = _limit(250_000, "most notes (note-on events, all tracks and tunes) read from one file; "
                                     "counted while parsing, so a denser file stops early", 1, 100_000_000)
    max_piece_quarters: float = _limit(16_384.0, "longest piece, in quarter notes from its start to its last note's "
                                                 "end (65,536 steps at 4 steps per quarter)", 1.0, 1e9)
    max_note_quarters: float = _limit(2_048.0, "longest single note, in quarter notes", 1.0, 1e9)
    max_ticks: int = _limit(50_000_000, "largest MIDI time in ticks (absolute, per track)", 1, 1 << 40)
    max_tune_chars: int = _limit(20_000, "largest ABC tune (from one X: line to the next), in characters",
                                 1, 1 << 34)
    max_tunes_per_file: int = _limit(250, "most ABC tunes read from one file (music21 parses ~60 tunes/s); later "
                                          "tunes are skipped",
                                     1, 10_000_000)
    max_metre_changes: int = _limit(4_096, "most time-signature events kept from one MIDI file (later ones are "
                                           "ignored)", 1, 1_000_000)
    max_parse_seconds: float = _limit(5.0, "CPU seconds music21 may spend parsing one ABC tune or one score file "
                                            "(a 9999-beat time signature makes it work for minutes)", 0.1, 1e6)
    max_tokens_per_file: int = _limit(4_000_000, "most corpus tokens (grid steps) kept from one source file; "
                                                 "later pieces of the file are skipped", 1, 1 << 40)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            lo, hi = f.metadata["bounds"]
            check_range(f.name, getattr(self, f.name), lo, hi)

    def max_piece_steps(self, steps_per_quarter: int) -> int:
        """The piece-length limit on a grid of `steps_per_quarter` steps per quarter note."""
        return int(self.max_piece_quarters * steps_per_quarter)

    def max_note_steps(self, steps_per_quarter: int) -> int:
        """The note-length limit on a grid of `steps_per_quarter` steps per quarter note."""
        return int(self.max_note_quarters * steps_per_quarter)


DEFAULT_LIMITS = ReadLimits()
# A primer is read while a user waits (CLI or web request): small file, few notes; its length is checked again in
# steps against the sampler's MAX_STEPS by the caller.
PRIMER_LIMITS = ReadLimits(max_file_bytes=2 << 20, max_notes=50_000, max_piece_quarters=4_096.0,
                           max_tokens_per_file=100_000)


class LimitExceeded(Exception):
    """Raised inside readers when a ReadLimits bound is crossed; `reason` is the skip reason code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@contextlib.contextmanager
def cpu_budget(seconds: float, what: str):
    """Raise LimitExceeded("too slow") inside the block once this process has spent `seconds` of CPU time in it.

    Uses ITIMER_PROF (CPU time, so a busy machine does not trigger it) and SIGPROF; the signal handler runs between
    Python bytecodes, which bounds pure-Python parsers such as music21's. Only in the main thread (signals cannot
    be handled elsewhere); in other threads the block runs unbounded.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def _expired(signum, frame):
        raise LimitExceeded("too slow", f"{what} took more than {seconds:g} CPU seconds to parse "
                                        f"(ReadLimits.max_parse_seconds)")

    old = signal.signal(signal.SIGPROF, _expired)
    signal.setitimer(signal.ITIMER_PROF, seconds, 0.5)  # and again every 0.5 s, should a parser swallow it
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def check_notes(notes, limits: ReadLimits, what: str = "piece") -> None:
    """Check a note list [(pitch, onset, offset)] in quarter notes against the length limits (no grid built).

    Raises LimitExceeded("too long", ...) naming the first bound crossed.
    """
    import numpy as np

    if not len(notes):
        return
    arr = np.asarray([(on, off) for _, on, off in notes], dtype=np.float64) if not isinstance(notes, np.ndarray) \
        else np.asarray(notes, dtype=np.float64)[:, 1:3]
    if not np.isfinite(arr).all():
        raise LimitExceeded("unreadable", f"{what} has a note time that is not a finite number")
    end = float(arr[:, 1].max())
    if end > limits.max_piece_quarters:
        raise LimitExceeded("too long", f"{what} lasts {end:,.0f} quarter notes; the limit is "
                                        f"{limits.max_piece_quarters:,.0f} (ReadLimits.max_piece_quarters)")
    longest = float((arr[:, 1] - arr[:, 0]).max())
    if longest > limits.max_note_quarters:
        raise LimitExceeded("too long", f"{what} has a note {longest:,.0f} quarter notes long; the limit is "
                                        f"{limits.max_note_quarters:,.0f} (ReadLimits.max_note_quarters)")

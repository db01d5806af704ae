"""Melodies on a time grid, and how one melody is extracted from a multi-track, possibly polyphonic piece.

Grid: a melody is a list of events, one per grid step (`steps_per_quarter` steps per quarter note, default 4, so one
step is a sixteenth note). Event values follow Magenta's melody encoding:

    HOLD (-2)  no event: the sounding note (if any) continues, or the silence continues
    OFF  (-1)  the sounding note ends here (a rest starts)
    p >= 0     a note of MIDI pitch p starts here (and ends the previous note, if any)

Extraction pipeline (`extract_melodies`), each step documented at its function:
    drop drum tracks -> choose the melody track (`choose_track`) -> quantise onsets/offsets to the grid
    (`quantise`) -> reduce polyphony to one line (`skyline`) -> split at long silences (`split_at_silences`)
    -> optional transposition to C major / A minor (`estimate_key`) -> clamp or drop out-of-range notes
    -> drop segments with fewer than `min_notes` notes.
Raw input (`RawTrack`, `RawPiece`) is in quarter notes, so tempo changes do not move notes on the grid; the piece's
first tempo (qpm) is kept as metadata, and its metre (every time signature, `RawPiece.metre`) goes with each
segment, moved to the segment's start (`Melody.metre`, app/music/metre.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from app.core.config import check_choice, check_range
from app.errors import OptionError
from app.music.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits, check_notes
from app.music.metre import shift_metre

HOLD = -2
OFF = -1

TRANSPOSE_CHOICES = ("none", "C")
OUT_OF_RANGE_CHOICES = ("clamp", "drop")
MODE_CHOICES = ("melody", "poly")


# --- config --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExtractConfig:
    """How melodies are extracted from pieces. Every field is validated on creation.

    steps_per_quarter: grid resolution (4 = sixteenth notes).
    min_pitch, max_pitch: MIDI pitch range kept (inclusive); the codec's vocabulary has one token per pitch.
    out_of_range: "clamp" moves an out-of-range note by whole octaves into range (keeps its pitch class);
        "drop" removes it (the step becomes silence). Either way the notes are counted in the report.
    transpose: "none", or "C" to transpose each piece to C major / A minor (key estimated from its pitch classes).
    augment: k > 0 adds copies of each *training* piece transposed by -k..+k semitones (copies that would leave
        the pitch range are not made). Validation pieces are never augmented.
    min_notes: a segment with fewer notes is skipped ("too short").
    split_silence: a silence of at least this many quarter notes splits a piece into segments (0 = never split).
    melody_track: None chooses automatically (`choose_track`); an int picks the track/part by index (0-based,
        counting all tracks including drums); a string picks the first track whose name contains it (case-folded).
    mode: "melody" (one line per piece, this module) or "poly" (every pitched track kept whole,
        app/music/polyextract.py; melody_track does not apply). drums: poly mode also keeps drum tracks.
    """

    steps_per_quarter: int = 4
    min_pitch: int = 48
    max_pitch: int = 96
    out_of_range: str = "clamp"
    transpose: str = "none"
    augment: int = 0
    min_notes: int = 8
    split_silence: float = 4.0
    melody_track: int | str | None = None
    mode: str = "melody"
    drums: bool = False

    def __post_init__(self) -> None:
        check_range("steps_per_quarter", self.steps_per_quarter, 1, 96)
        check_range("min_pitch", self.min_pitch, 0, 127)
        check_range("max_pitch", self.max_pitch, 0, 127)
        if self.max_pitch - self.min_pitch < 11:
            raise OptionError(f"pitch range {self.min_pitch}..{self.max_pitch} is narrower than one octave; "
                              f"choose min_pitch and max_pitch at least 11 semitones apart")
        check_choice("out_of_range", self.out_of_range, OUT_OF_RANGE_CHOICES)
        check_choice("transpose", self.transpose, TRANSPOSE_CHOICES)
        check_choice("mode", self.mode, MODE_CHOICES)
        if not isinstance(self.drums, bool):
            raise OptionError(f"drums must be true or false, got {self.drums!r}")
        check_range("augment", self.augment, 0, 12)
        check_range("min_notes", self.min_notes, 1, 100000)
        check_range("split_silence", self.split_silence, 0.0, None)
        if self.melody_track is not None and not isinstance(self.melody_track, (int, str)):
            raise OptionError(f"melody_track must be a track index, a name or None, got {self.melody_track!r}")


# --- raw input -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RawTrack:
    """One track (MIDI) or part (score): notes as (pitch, onset, offset) in quarter notes from the piece start."""

    name: str
    notes: tuple[tuple[int, float, float], ...]
    program: int = 0
    is_drum: bool = False


@dataclass(frozen=True)
class RawPiece:
    """One piece as read from a file (an ABC file holds several). `name` identifies it within the source.

    time_signature: the first one. metre: every time signature along the piece as (onset in quarters, numerator,
    denominator), each starting a bar (the first may be at a negative onset: a pickup; see app/music/metre.py);
    empty = time_signature from 0. repeats: "" (not a score: MIDI is already in played order), "none", "expanded"
    or "not expanded" (malformed repeats, written order kept; repeats_detail says why). written: for an expanded
    piece, the same piece in written order (only to count what expansion added).
    """

    name: str
    tracks: tuple[RawTrack, ...]
    qpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    metre: tuple[tuple[float, int, int], ...] = ()
    repeats: str = ""
    repeats_detail: str = ""
    written: "RawPiece | None" = None


# --- the melody ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Melody:
    """A monophonic line: `events[t]` is HOLD, OFF or a pitch at grid step t (see module docstring).

    Metadata: steps_per_quarter (grid), qpm (quarter notes per minute), time_signature (numerator, denominator),
    program (General MIDI program 0..127 used when written to MIDI). Length in steps is `len(events)`.
    metre: the time signatures along the melody as (step, numerator, denominator) changes, each starting a bar
    (app/music/metre.py; the first may be at step <= 0 to give the bar phase at step 0); empty = time_signature
    from step 0. Use `metre_changes()` to read it either way.
    """

    events: tuple[int, ...]
    steps_per_quarter: int = 4
    qpm: float = 120.0
    time_signature: tuple[int, int] = (4, 4)
    program: int = 0
    metre: tuple[tuple[int, int, int], ...] = ()

    def metre_changes(self) -> list[tuple[int, int, int]]:
        """The metre as a list of (step, numerator, denominator) changes, at least one."""
        if self.metre:
            return [(int(a), int(b), int(c)) for a, b, c in self.metre]
        return [(0, int(self.time_signature[0]), int(self.time_signature[1]))]

    @property
    def steps(self) -> int:
        return len(self.events)

    def notes(self) -> list[tuple[int, int, int]]:
        """(pitch, start_step, end_step) per note; a note ends at the next note-on or OFF, or at the end."""
        out: list[tuple[int, int, int]] = []
        cur: list[int] | None = None
        for t, e in enumerate(self.events):
            if e == HOLD:
                continue
            if cur is not None:
                out.append((cur[0], cur[1], t))
                cur = None
            if e >= 0:
                cur = [e, t]
        if cur is not None:
            out.append((cur[0], cur[1], len(self.events)))
        return out

    @classmethod
    def from_notes(cls, notes: Sequence[tuple[int, int, int]], **meta) -> "Melody":
        """Monophonic, non-overlapping (pitch, start, end) notes in steps -> canonical Melody.

        Canonical form: silence is OFF at the step a note ends (unless another note starts there) then HOLDs; the
        melody ends at the last note's end (no trailing silence). Leading silence before the first note is kept.
        """
        notes = sorted(notes, key=lambda n: n[1])
        length = max((n[2] for n in notes), default=0)
        ev = [HOLD] * length
        for i, (p, s, e) in enumerate(notes):
            if e <= s:
                raise ValueError(f"note {p} has end {e} <= start {s}")
            if i + 1 < len(notes) and notes[i + 1][1] < e:
                raise ValueError(f"notes overlap at step {notes[i + 1][1]}; reduce with skyline() first")
            ev[s] = int(p)
            if e < length and ev[e] == HOLD:
                ev[e] = OFF
        return cls(events=tuple(ev), **meta)

    def canonical(self) -> "Melody":
        """The same notes in canonical form (what a MIDI file can represent; see `from_notes`)."""
        return Melody.from_notes(self.notes(), **self.meta())

    def meta(self) -> dict:
        return {"steps_per_quarter": self.steps_per_quarter, "qpm": self.qpm,
                "time_signature": tuple(self.time_signature), "program": self.program,
                "metre": tuple(self.metre)}


# --- extraction steps ----------------------------------------------------------------------------------------------
def quantise(notes: Sequence[tuple[int, float, float]], steps_per_quarter: int) -> list[tuple[int, int, int]]:
    """(pitch, onset, offset) in quarters -> (pitch, start, end) in steps, rounding to the nearest step.

    A note shorter than half a step still lasts one step (so grace-like notes are not lost); zero-length notes
    (score grace notes) are dropped. Output is sorted by start, then by pitch descending (stable). Vectorised:
    one numpy pass and one sort, O(n log n) (rounding is half-to-even, as Python's round()).
    """
    if not len(notes):
        return []
    arr = np.asarray(notes, dtype=np.float64).reshape(-1, 3)
    arr = arr[arr[:, 2] > arr[:, 1]]
    p = arr[:, 0].astype(np.int64)
    s = np.round(arr[:, 1] * steps_per_quarter).astype(np.int64)
    e = np.maximum(np.round(arr[:, 2] * steps_per_quarter).astype(np.int64), s + 1)
    order = np.lexsort((-p, s))  # last key is primary; lexsort is stable
    return list(zip(p[order].tolist(), s[order].tolist(), e[order].tolist()))


def skyline(notes: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Polyphony -> one line, keeping the top voice ("skyline").

    Rules, over notes sorted by onset: of notes starting on the same step only the highest is kept. A note that
    starts while a *higher* note is still sounding -- kept or not, e.g. the inner note of a held chord -- is dropped
    (it is under the melody). A note that starts while only lower or equal notes sound cuts the line's current note
    short and takes over; re-striking a pitch ends that pitch's earlier note. Notes are never resumed after a cut,
    so the line is always a sequence of note-ons with their own onsets.

    Cost O(n log n): one sort, then the sounding notes sit in a max-heap by pitch; ended notes (end <= onset) and
    notes ended by a re-strike of their pitch (an older generation of that pitch) are dropped lazily from its top.
    """
    import heapq

    line: list[list[int]] = []
    heap: list[tuple[int, int, int]] = []  # (-pitch, end, generation of the pitch) of every note seen, kept or not
    gen = [0] * 128 if not notes else [0] * (max(128, max(n[0] for n in notes) + 1))
    for p, s, e in sorted(notes, key=lambda n: (n[1], -n[0])):
        if line and line[-1][1] == s:
            heapq.heappush(heap, (-p, e, gen[p]))
            continue  # same onset as the line's note, which sorts first: this one is lower or a unison double
        gen[p] += 1  # a re-struck key ends its old note
        while heap and (heap[0][1] <= s or heap[0][2] != gen[-heap[0][0]]):
            heapq.heappop(heap)
        higher = bool(heap) and -heap[0][0] > p
        heapq.heappush(heap, (-p, e, gen[p]))
        if higher:
            continue  # under the melody (this includes lower notes of a chord: the highest came first)
        if line and line[-1][2] > s:
            line[-1][2] = s
        line.append([p, s, e])
    return [tuple(n) for n in line]  # type: ignore[misc]


def split_at_silences(notes: Sequence[tuple[int, int, int]], gap_steps: int) -> list[list[tuple[int, int, int]]]:
    """Split a monophonic note list wherever the silence between two notes is >= gap_steps (0 = never).

    Each segment is shifted to start at step 0 (leading silence is removed).
    """
    segments: list[list[tuple[int, int, int]]] = []
    cur: list[tuple[int, int, int]] = []
    for n in notes:
        if cur and gap_steps > 0 and n[1] - cur[-1][2] >= gap_steps:
            segments.append(cur)
            cur = []
        cur.append(n)
    if cur:
        segments.append(cur)
    out = []
    for seg in segments:
        t0 = seg[0][1]
        out.append([(p, s - t0, e - t0) for p, s, e in seg])
    return out


# Krumhansl-Kessler key profiles (probe-tone ratings), index 0 = tonic.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def estimate_key(notes: Sequence[tuple[int, int, int]]) -> tuple[int, str]:
    """(tonic pitch class 0..11, "major"|"minor") by the Krumhansl-Schmuckler method: the key whose profile
    correlates best with the duration-weighted pitch-class histogram. Ties go to the lower tonic, major first."""
    hist = np.zeros(12)
    for p, s, e in notes:
        hist[p % 12] += e - s
    if not hist.any():
        return 0, "major"
    best = (-2.0, 0, "major")
    for mode, prof in (("major", _MAJOR), ("minor", _MINOR)):
        for tonic in range(12):
            r = float(np.corrcoef(hist, np.roll(prof, tonic))[0, 1]) if hist.std() > 0 else 0.0
            if r > best[0] + 1e-12:
                best = (r, tonic, mode)
    return best[1], best[2]


def transposition_to_c(notes: Sequence[tuple[int, int, int]]) -> int:
    """Semitones (-6..+5, the smallest move) that take the estimated key to C major or A minor."""
    tonic, mode = estimate_key(notes)
    target = 0 if mode == "major" else 9
    return (target - tonic + 6) % 12 - 6


def fit_range(notes: Sequence[tuple[int, int, int]], lo: int, hi: int, mode: str
              ) -> tuple[list[tuple[int, int, int]], int]:
    """Apply the out-of-range rule (see ExtractConfig.out_of_range). Returns (notes, number of notes affected)."""
    out, n_bad = [], 0
    for p, s, e in notes:
        if lo <= p <= hi:
            out.append((p, s, e))
            continue
        n_bad += 1
        if mode == "clamp":
            while p < lo:
                p += 12
            while p > hi:
                p -= 12
            out.append((p, s, e))
    return out, n_bad


def track_score(track: RawTrack, steps_per_quarter: int) -> tuple[float, float]:
    """Melodic content of a track, as used by `choose_track`: (notes in its skyline, median skyline pitch).

    Only the number of distinct melodic onsets counts, so a chord-heavy pad does not outscore a busy line.
    """
    line = skyline(quantise(track.notes, steps_per_quarter))
    if not line:
        return 0.0, 0.0
    return float(len(line)), float(np.median([p for p, _, _ in line]))


BUSY_FRACTION = 0.5  # a melody candidate has at least half the skyline notes of the busiest track


def choose_track(tracks: Sequence[RawTrack], steps_per_quarter: int, choice: int | str | None = None
                 ) -> int | None:
    """Index of the melody track in `tracks`, or None if no track qualifies.

    Automatic choice (choice=None), a "high and busy" rule: among non-drum tracks with notes, the candidates are
    those with at least half as many skyline notes as the busiest track (so sparse pads and fills are out); of
    these the one with the highest median skyline pitch wins (melodies sit above bass and accompaniment, e.g. the
    soprano of a chorale); ties go to more notes, then the lower index. An int `choice` is a track index (drums
    included in the count); a str matches a track name (case-insensitive substring); a choice that matches no
    track with notes returns None.
    """
    if isinstance(choice, int):
        return choice if 0 <= choice < len(tracks) and tracks[choice].notes else None
    if isinstance(choice, str):
        key = choice.casefold()
        for i, t in enumerate(tracks):
            if key in t.name.casefold() and t.notes:
                return i
        return None
    scored = [(i, *track_score(t, steps_per_quarter)) for i, t in enumerate(tracks) if not t.is_drum and t.notes]
    scored = [s for s in scored if s[1] > 0]
    if not scored:
        return None
    busiest = max(s[1] for s in scored)
    candidates = [s for s in scored if s[1] >= BUSY_FRACTION * busiest]
    candidates.sort(key=lambda s: (-s[2], -s[1], s[0]))
    return candidates[0][0]


# --- the whole pipeline --------------------------------------------------------------------------------------------
@dataclass
class Extraction:
    """Result of extracting one piece: kept segments, or `skip` (a reason code) and `detail` if none are kept.

    Counts: out_of_range (notes clamped or dropped), short_segments (segments dropped as too short).
    """

    melodies: list[Melody] = field(default_factory=list)
    skip: str | None = None
    detail: str = ""
    out_of_range: int = 0
    short_segments: int = 0
    transposed_by: int = 0
    track: int | None = None


def melody_line(piece: RawPiece, config: ExtractConfig, limits: ReadLimits = DEFAULT_LIMITS
                ) -> tuple[list[tuple[int, int, int]], Extraction]:
    """Choose the track, quantise and skyline: the piece's monophonic note list in steps (no splitting, no range
    handling). On failure returns [] and an Extraction with `skip` set. The note list is checked against `limits`
    (piece and note length) first, so no grid is ever built for an absurdly long piece ("too long")."""
    res = Extraction()
    tracks = piece.tracks
    if not any(t.notes for t in tracks):
        res.skip, res.detail = "no notes", "the piece has no notes"
        return [], res
    try:
        check_notes([n for t in tracks for n in t.notes], limits)
    except LimitExceeded as exc:
        res.skip, res.detail = exc.reason, exc.detail
        return [], res
    if config.melody_track is None and all(t.is_drum for t in tracks if t.notes):
        res.skip, res.detail = "drums only", "every track with notes is a drum track"
        return [], res
    idx = choose_track(tracks, config.steps_per_quarter, config.melody_track)
    if idx is None:
        names = ", ".join(f"{i}:{t.name or '(unnamed)'}" for i, t in enumerate(tracks))
        if config.melody_track is None:
            res.skip, res.detail = "no notes", "no track has pitched notes"
        else:
            res.skip, res.detail = "track not found", f"melody track {config.melody_track!r} not among [{names}]"
        return [], res
    res.track = idx
    return skyline(quantise(tracks[idx].notes, config.steps_per_quarter)), res


def extract_melodies(piece: RawPiece, config: ExtractConfig, limits: ReadLimits = DEFAULT_LIMITS) -> Extraction:
    """Run the full extraction pipeline (module docstring) on one piece, within `limits` (see melody_line)."""
    line, res = melody_line(piece, config, limits)
    if res.skip:
        return res
    meta = {"steps_per_quarter": config.steps_per_quarter, "qpm": float(piece.qpm),
            "time_signature": tuple(piece.time_signature), "program": 0}
    spq = config.steps_per_quarter
    changes = [(int(round(q * spq)), int(n), int(d)) for q, n, d in piece.metre if int(n) >= 1 and int(d) >= 1] \
        or [(0, *map(int, piece.time_signature))]
    if config.transpose == "C":
        res.transposed_by = transposition_to_c(line)
        line = [(p + res.transposed_by, s, e) for p, s, e in line]
    gap = int(round(config.split_silence * config.steps_per_quarter))
    n_total = 0
    cursor = 0  # index in `line` of the segment's first note (segments come back shifted to 0)
    for seg in split_at_silences(line, gap):
        origin = line[cursor][1] if cursor < len(line) else 0
        cursor += len(seg)
        seg, n_bad = fit_range(seg, config.min_pitch, config.max_pitch, config.out_of_range)
        res.out_of_range += n_bad
        n_total += len(seg)
        if len(seg) < config.min_notes:
            res.short_segments += 1
            continue
        t0 = seg[0][1]  # "drop" may have removed the first note
        metre = tuple(shift_metre(changes, origin + t0, spq))
        seg_meta = {**meta, "metre": metre, "time_signature": metre[0][1:]}
        res.melodies.append(Melody.from_notes([(p, s - t0, e - t0) for p, s, e in seg], **seg_meta))
    if not res.melodies:
        res.skip, res.detail = nothing_kept(n_total, res.short_segments, config)
    return res


def nothing_kept(notes_in_range: int, short_segments: int, config: ExtractConfig) -> tuple[str, str]:
    """(skip reason, detail) of a piece none of whose segments was kept (melody and poly extraction)."""
    if notes_in_range == 0:
        return "no notes in range", (f"every note is outside {config.min_pitch}..{config.max_pitch} "
                                     f"(out_of_range=drop)")
    return "too short", (f"{short_segments} segment(s), none with >= {config.min_notes} notes "
                         f"(split at silences >= {config.split_silence} quarters)")

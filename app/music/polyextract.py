"""Polyphonic extraction (`music corpus --mode poly`, issue 14): every pitched track of a piece, kept whole.

Pipeline (`extract_poly`), the poly counterpart of app.music.melody.extract_melodies with the same config fields:
    check the piece against the read limits (no grid is built for an absurd piece) -> merge the notes of every
    non-drum track (drum tracks too with `drums=True`: their notes keep their GM drum-key numbers) -> quantise to
    the grid (`quantise`) -> merge into the piano roll (`polycodec.canonical`: one key sounds once) -> split
    where nothing sounds for `split_silence` quarters -> optional transposition to C major / A minor (key
    estimated from all notes) -> clamp or drop out-of-range notes (then merged again) -> drop segments with fewer
    than `min_notes` notes.
A segment is (notes, steps): notes (pitch, start, end) in steps from the segment start, steps = the last note's end.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from app.music.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits, check_notes
from app.music.melody import ExtractConfig, RawPiece, fit_range, nothing_kept, quantise, transposition_to_c
from app.music.metre import shift_metre
from app.music.polycodec import Note, canonical


@dataclass
class PolyExtraction:
    """Result of one piece: segments [(notes, steps)], their metres, or `skip` and `detail` when none is kept."""

    segments: list[tuple[list[Note], int]] = field(default_factory=list)
    metres: list[list[tuple[int, int, int]]] = field(default_factory=list)
    skip: str | None = None
    detail: str = ""
    out_of_range: int = 0
    short_segments: int = 0
    transposed_by: int = 0
    tracks: int = 0  # tracks whose notes were kept
    kept_notes: int = 0  # source notes struck in the kept segments (a unison doubling counts for each part)
    unisons: int = 0  # notes that share their key and step with another note (merged into one on the grid)


def split_poly(notes: list[Note], gap_steps: int) -> list[list[Note]]:
    """Cut a note list (sorted by start) wherever nothing sounds for >= gap_steps steps (0 = never); each part
    shifted to start at step 0."""
    parts: list[list[Note]] = []
    cur: list[Note] = []
    end = None
    for n in notes:
        if cur and gap_steps > 0 and n[1] - end >= gap_steps:
            parts.append(cur)
            cur = []
        cur.append(n)
        end = n[2] if end is None or not cur[:-1] else max(end, n[2])
    if cur:
        parts.append(cur)
    out = []
    for part in parts:
        t0 = min(s for _, s, _ in part)
        out.append([(p, s - t0, e - t0) for p, s, e in part])
    return out


def extract_poly(piece: RawPiece, config: ExtractConfig, limits: ReadLimits = DEFAULT_LIMITS) -> PolyExtraction:
    """Run the poly pipeline (module docstring) on one piece, within `limits`."""
    res = PolyExtraction()
    use = [t for t in piece.tracks if t.notes and (config.drums or not t.is_drum)]
    if not any(t.notes for t in piece.tracks):
        res.skip, res.detail = "no notes", "the piece has no notes"
        return res
    if not use:
        res.skip, res.detail = "drums only", "every track with notes is a drum track (pass --drums to keep them)"
        return res
    try:
        check_notes([n for t in piece.tracks for n in t.notes], limits)
    except LimitExceeded as exc:
        res.skip, res.detail = exc.reason, exc.detail
        return res
    res.tracks = len(use)
    spq = config.steps_per_quarter
    quantised = quantise([n for t in use for n in t.notes], spq)
    notes = canonical(quantised)
    struck = Counter((p, s) for p, s, _ in quantised)  # notes per (key, step): > 1 for unison doublings
    res.unisons = len(quantised) - len(struck)
    if config.transpose == "C":
        res.transposed_by = transposition_to_c(notes)
        notes = [(p + res.transposed_by, s, e) for p, s, e in notes]
        struck = Counter({(p + res.transposed_by, s): n for (p, s), n in struck.items()})
    changes = [(int(round(q * spq)), int(n), int(d)) for q, n, d in piece.metre if int(n) >= 1 and int(d) >= 1] \
        or [(0, *map(int, piece.time_signature))]
    gap = int(round(config.split_silence * spq))
    parts = split_poly(notes, gap)
    # each part's start step in the piece, for its metre
    starts, k = [], 0
    for part in parts:
        starts.append(notes[k][1])
        k += len(part)
    n_total = 0
    for part, origin in zip(parts, starts):
        weight = sum(struck[(p, s + origin)] for p, s, _ in part
                     if config.out_of_range == "clamp" or config.min_pitch <= p <= config.max_pitch)
        kept, n_bad = fit_range(part, config.min_pitch, config.max_pitch, config.out_of_range)
        res.out_of_range += n_bad
        kept = canonical(kept) if kept else []
        n_total += len(kept)
        if len(kept) < config.min_notes:
            res.short_segments += 1
            continue
        t0 = min(s for _, s, _ in kept)
        kept = [(p, s - t0, e - t0) for p, s, e in kept]
        res.segments.append((kept, max(e for _, _, e in kept)))
        res.kept_notes += weight
        res.metres.append(shift_metre(changes, origin + t0, spq))
    if not res.segments:
        res.skip, res.detail = nothing_kept(n_total, res.short_segments, config)
    return res

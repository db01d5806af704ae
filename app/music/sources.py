"""Music sources: find the files a source names, and read each file into pieces (`RawPiece`).

A source is one of
    a folder          searched recursively for supported files (hidden files and folders are ignored)
    a file            .mid/.midi (pretty_midi) or .abc/.xml/.mxl/.musicxml/.krn (music21)
    music21:NAME      a collection of music21's bundled corpus, e.g. music21:oneills1850

An ABC file holds many tunes: every tune (from one `X:` line to the next) is its own piece, parsed on its own so a
syntax error in one tune skips only that tune. Problems are returned as `Skip` records, never raised, except for a
source that does not exist at all (a typo), which raises DataError.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from app.errors import DataError
from app.music.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits, check_notes, cpu_budget
from app.music.melody import RawPiece, RawTrack

MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".abc", ".xml", ".mxl", ".musicxml", ".krn")
SUPPORTED = MIDI_SUFFIXES + SCORE_SUFFIXES
MUSIC21_PREFIX = "music21:"
DEFAULT_SOURCES = ("music21:oneills1850", "music21:airdsAirs", "music21:ryansMammoth")


@dataclass(frozen=True)
class SourceFile:
    """A file to read: `path` on disk, `label` as shown in reports (relative to its source)."""

    path: str
    label: str

    @property
    def kind(self) -> str:
        suffix = Path(self.path).suffix.lower()
        return "midi" if suffix in MIDI_SUFFIXES else "abc" if suffix == ".abc" else "score"


@dataclass(frozen=True)
class Skip:
    """Something not used, with a reason code (e.g. "unreadable", "drums only", "too short") and details."""

    source: str
    reason: str
    detail: str = ""

    def to_json(self) -> dict:
        return {"source": self.source, "reason": self.reason, "detail": self.detail}


def music21_collection(name: str) -> list[Path]:
    """Files of a music21 corpus collection (a folder of music21's bundled corpus), sorted."""
    import importlib.util

    # find the corpus folder without importing music21 (seconds), so a cached build stays fast
    spec = importlib.util.find_spec("music21")
    if spec is None or spec.origin is None:
        raise DataError(f"{MUSIC21_PREFIX}{name}: music21 is not installed; install requirements.txt")
    root = Path(spec.origin).parent / "corpus"
    folder = root / name
    if not name or "/" in name or ".." in name or not folder.is_dir():
        known = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
        raise DataError(f"{MUSIC21_PREFIX}{name} is not a music21 corpus collection; known: {', '.join(known)}")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED)


def _walk(root: Path, skips: list[Skip], label_root: Path, _seen: set | None = None) -> list[Path]:
    """Files under `root` (recursive, sorted, hidden entries ignored); unreadable folders become Skips.

    Never follows a symlink to a folder (it could lead out of the tree, or back into it: `sub/up -> ..` would read
    every file again and again) and never visits one folder twice (bind mounts); such entries become Skips.
    Entries that are not regular files (FIFOs, sockets, devices -- reading a FIFO blocks forever) become Skips;
    symlinks to regular files are read.
    """
    seen = set() if _seen is None else _seen
    found: list[Path] = []
    try:
        st = os.stat(root)
        if (st.st_dev, st.st_ino) in seen:
            skips.append(Skip(printable(_rel(root, label_root)), "folder loop", "already read (a bind mount?)"))
            return found
        seen.add((st.st_dev, st.st_ino))
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        skips.append(Skip(printable(_rel(root, label_root) or str(root)), "unreadable folder",
                          exc.strerror or str(exc)))
        return found
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_link = entry.is_symlink()
            is_dir = entry.is_dir(follow_symlinks=True)
            is_file = entry.is_file(follow_symlinks=True)
        except OSError:
            is_link = is_dir = is_file = False
        if is_dir and is_link:
            skips.append(Skip(printable(_rel(path, label_root)), "symlinked folder",
                              "links to folders are not followed (they can lead out of the source or loop back "
                              "into it); pass the target folder as its own source"))
        elif is_dir:
            found.extend(_walk(path, skips, label_root, seen))
        elif is_file or path.suffix.lower() not in SUPPORTED:
            found.append(path)  # unsupported names are reported as such by find_files
        else:
            skips.append(Skip(printable(_rel(path, label_root)), "not a regular file",
                              "a FIFO, socket, device or broken link; only regular files are read"))
    return found


def printable(text: str) -> str:
    """A name safe to print and to write as UTF-8 JSON: bytes of a non-UTF-8 file name (held by Python as lone
    surrogates, e.g. "Caf\udce9.mid") are shown as escapes ("Caf\\xe9.mid")."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def find_files(sources: list[str] | tuple[str, ...]) -> tuple[list[SourceFile], list[Skip]]:
    """Expand source specs into supported files (in a stable order) plus Skips for unsupported files and
    unreadable folders. Raises DataError for a path that does not exist or an unknown music21 collection."""
    files: list[SourceFile] = []
    skips: list[Skip] = []
    for spec in sources:
        if spec.startswith(MUSIC21_PREFIX):
            name = spec[len(MUSIC21_PREFIX):]
            for p in music21_collection(name):
                files.append(SourceFile(str(p), f"{spec}/{p.name}"))
            continue
        root = Path(spec)
        if root.is_symlink() and not root.exists():
            raise DataError(f"source {printable(spec)!r} is a broken symbolic link; pass a folder or music file")
        if not root.exists():
            raise DataError(f"source {printable(spec)!r} does not exist; pass a folder, a music file "
                            f"({', '.join(SUPPORTED)}) or {MUSIC21_PREFIX}COLLECTION")
        if root.is_dir():
            found = _walk(root, skips, root)
            base = root.name or str(root)
            labelled = [(p, printable(f"{base}/{_rel(p, root)}")) for p in found]
        else:
            labelled = [(root, printable(str(root)))]
        for p, label in labelled:
            if p.suffix.lower() in SUPPORTED:
                files.append(SourceFile(str(p), label))
            else:
                skips.append(Skip(label, "unsupported file type",
                                  f"{p.suffix or 'no extension'}; supported: {' '.join(SUPPORTED)}"))
    return files, skips


# --- reading -------------------------------------------------------------------------------------------------------
_X_LINE = re.compile(r"^X:", re.MULTILINE)


def split_abc(text: str) -> list[tuple[str, str]]:
    """ABC text -> [(tune id, tune text)]: one entry per `X:` tune, each prefixed by the file header (the lines
    before the first X:, which may set defaults). A file without X: lines is one tune with id "1"."""
    starts = [m.start() for m in _X_LINE.finditer(text)]
    if not starts:
        return [("1", text)] if text.strip() else []
    header = text[: starts[0]]
    header = "\n".join(line for line in header.splitlines() if line.startswith(("%", "L:", "M:", "Q:", "I:")))
    tunes = []
    for i, s in enumerate(starts):
        body = text[s: starts[i + 1] if i + 1 < len(starts) else len(text)]
        first = body.splitlines()[0]
        tune_id = first[2:].strip() or str(i + 1)
        tunes.append((tune_id, (header + "\n" + body) if header else body))
    return tunes


def _decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # old ABC collections are often Latin-1; every byte decodes


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160]}" if text else type(exc).__name__


def piece_from_score(score, name: str) -> RawPiece:
    """music21 Score (or Part) -> RawPiece: one RawTrack per part, offsets in quarter notes, in *played* order.

    Grace notes (zero duration) are dropped; tied notes are merged; chords contribute all their pitches (the
    skyline keeps the top one); parts with unpitched percussion are marked as drums.

    Repeats: a score whose measures carry repeat barlines, first/second endings (voltas) or repeat expressions
    (D.C., segno ...) is read in the order it is played (`expand_measures`: our `played_order` for bar lines and
    voltas -- music21's `expandRepeats` order except that `A :| B :|` is AABB -- and music21's Expander where
    repeat expressions appear); `repeats` says "expanded", "none" (nothing to expand) or "not expanded" (malformed
    repeats: the piece keeps its written order and `repeats_detail` says why). An expanded piece keeps its
    written-order form in `written` (to count what expansion added). Metre: `metre` lists the piece's time
    signatures along the played order with its bar lines (see `_metre`).
    """
    from music21 import instrument, stream, tempo

    parts = list(score.parts) if hasattr(score, "parts") and len(score.parts) else [score]
    # the played order comes from the first part with measures; every part follows it (parts share bar lines)
    measures = [list(p.getElementsByClass(stream.Measure)) for p in parts]
    ref = next((k for k, ms in enumerate(measures) if ms), None)
    order, status, detail = None, "none", ""
    if ref is not None:
        order, status, detail = expand_measures(score, measures[ref])
        if order is not None and any(len(ms) != len(measures[ref]) for ms in measures if ms):
            order, status, detail = None, "not expanded", "parts have different numbers of measures"
    tracks, written_tracks = [], []
    for i, part in enumerate(parts):
        events, unpitched = _note_events(part.flatten())
        inst = part.getInstrument(returnDefault=False) if hasattr(part, "getInstrument") else None
        notes = _merge_ties(events)
        played = notes
        if order is not None and measures[i]:
            played = _merge_ties(_reorder(events, _measure_spans(measures[i]), order))
        is_drum = isinstance(inst, instrument.UnpitchedPercussion) or (unpitched > 0 and not notes)
        program = inst.midiProgram if inst is not None and inst.midiProgram is not None else 0
        pname = (getattr(part, "partName", None) or (inst.instrumentName if inst is not None else None)
                 or f"part {i}")
        tracks.append(RawTrack(name=str(pname), notes=played, program=int(program), is_drum=is_drum))
        written_tracks.append(RawTrack(name=str(pname), notes=notes, program=int(program), is_drum=is_drum))
    # recurse() walks in document order, so the first hit is the opening tempo/metre (flatten() may not be)
    qpm = 120.0
    for mm in score.recurse().getElementsByClass(tempo.MetronomeMark):
        q = mm.getQuarterBPM()
        if q:
            qpm = float(q)
            break
    sig = _first_time_signature(score)
    if ref is None:
        return RawPiece(name=name, tracks=tuple(tracks), qpm=qpm, time_signature=sig,
                        metre=((0.0, *sig),), repeats="none")
    spans = _measure_spans(measures[ref])
    sigs = _measure_signatures(measures[ref], sig)
    written_metre = _metre(spans, sigs, range(len(spans)))
    if order is None:
        return RawPiece(name=name, tracks=tuple(tracks), qpm=qpm, time_signature=sig, metre=written_metre,
                        repeats=status, repeats_detail=detail)
    written = RawPiece(name=name, tracks=tuple(written_tracks), qpm=qpm, time_signature=sig, metre=written_metre,
                       repeats="none")
    return RawPiece(name=name, tracks=tuple(tracks), qpm=qpm, time_signature=sig,
                    metre=_metre(spans, sigs, order), repeats=status, written=written)


def _note_events(flat) -> tuple[list[tuple[int, float, float, str | None]], int]:
    """(midi pitch, onset, offset, tie type) of every pitched note and chord pitch, in written (offset) order,
    and the number of unpitched (percussion) notes."""
    from music21 import note

    out = []
    unpitched = 0
    for el in flat.notes:
        ql = float(el.duration.quarterLength)
        if ql <= 0:
            continue
        if isinstance(el, note.Unpitched) or not hasattr(el, "pitches"):
            unpitched += 1
            continue
        on = float(el.offset)
        tie = getattr(el, "tie", None)
        for pitch in el.pitches:
            midi = int(round(pitch.ps))
            if 0 <= midi <= 127:
                out.append((midi, on, on + ql, tie.type if tie is not None else None))
    return out, unpitched


def _merge_ties(events) -> tuple[tuple[int, float, float], ...]:
    """Note events (in play order) -> notes, a tie stop/continue extending the open note of its pitch."""
    notes: list[list] = []
    open_tie: dict[int, int] = {}  # pitch -> index in notes of a note that may be continued by a tie
    for midi, on, off, tie in events:
        j = open_tie.get(midi)
        if tie in ("stop", "continue") and j is not None and abs(notes[j][2] - on) < 1e-6:
            notes[j][2] = off
        else:
            notes.append([midi, on, off])
            open_tie[midi] = len(notes) - 1
    return tuple(tuple(n) for n in notes)


def _measure_spans(measures) -> list[tuple[float, float]]:
    """(offset, length) of each measure in quarters; a measure lasts until the next one starts."""
    offs = [float(m.offset) for m in measures]
    spans = []
    for k, m in enumerate(measures):
        end = offs[k + 1] if k + 1 < len(offs) else offs[k] + float(m.highestTime)
        spans.append((offs[k], max(0.0, end - offs[k])))
    return spans


def _reorder(events, spans, order) -> list:
    """Written-order note events -> played order: measure `order[k]` is played k-th, its notes moved along."""
    import bisect

    starts = [s for s, _ in spans]
    by_measure: list[list] = [[] for _ in spans]
    for ev in events:
        by_measure[max(0, bisect.bisect_right(starts, ev[1] + 1e-9) - 1)].append(ev)
    out, t = [], 0.0
    for j in order:
        shift = t - spans[j][0]
        out.extend((p, on + shift, off + shift, tie) for p, on, off, tie in by_measure[j])
        t += spans[j][1]
    return out


def _first_time_signature(score) -> tuple[int, int]:
    from music21 import meter

    for ts in score.recurse().getElementsByClass(meter.TimeSignature):
        return int(ts.numerator), int(ts.denominator)
    return 4, 4


def _measure_signatures(measures, first: tuple[int, int]) -> list[tuple[int, int]]:
    """The time signature in force in each measure (written order): the latest one at or before its start."""
    from music21 import meter

    out, cur = [], first
    for m in measures:
        for ts in m.getElementsByClass(meter.TimeSignature):
            cur = (int(ts.numerator), int(ts.denominator))
            break
        out.append(cur)
    return out


def _metre(spans, sigs, order) -> tuple[tuple[float, int, int], ...]:
    """Metre changes (onset in quarters, numerator, denominator) along the measures played in `order`.

    Bars follow the running grid of the time signature in force. A new change (a new bar) is recorded where the
    time signature changes, and where a measure at least a bar long starts off that grid (after a short last bar
    before a repeat, or an over-full measure). Short measures -- pickups and the bars they complete -- run on the
    grid, so `d|...|dBgB A2A:|` (a pickup of one eighth, a last bar one eighth short) keeps one grid when repeated.
    A short first measure is a pickup: the first change is placed before 0 (onset -(bar - pickup))."""
    changes: list[tuple[float, int, int]] = []
    t = 0.0
    for j in order:
        num, den = sigs[j]
        bar = 4.0 * num / den
        length = spans[j][1]
        if not changes:
            start = t - (bar - length) if 0 < length < bar - 1e-6 else t
            changes.append((start, num, den))
        else:
            s0, n0, d0 = changes[-1]
            phase = (t - s0) / bar
            off_grid = abs(phase - round(phase)) * bar > 1e-6
            if (num, den) != (n0, d0) or (off_grid and length >= bar - 1e-6):
                changes.append((t, num, den))
        t += length
    return tuple(changes) or ((0.0, 4, 4),)


# --- repeats -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RepeatMarks:
    """The repeat marks of one measure: `start` (|:), `end` (:| played `end` times in all, 0 = none), `endings`
    (the volta numbers of a first/second-ending bracket over this measure, empty if none)."""

    start: bool = False
    end: int = 0
    endings: frozenset[int] = frozenset()


MAX_EXPANSION = 8  # a played order longer than this many times the written measures is malformed


def played_order(marks: list[RepeatMarks]) -> list[int] | None:
    """Indices of the measures in the order they are played, or None when the repeats are malformed.

    Rules (common practice): an end repeat sends the player back to the last start repeat, or, without one, to
    the measure after the previous end repeat (or the start), until the section has been played `end` times --
    so `A :| B :|` is played AABB (music21's Expander plays it AABAAB); measures under a volta bracket are played only on the passes
    its numbers name; with voltas the section is repeated until the last volta number is reached. Malformed: volta
    brackets with no end repeat among them, a measure never played (e.g. a second ending without an end repeat),
    or a runaway order.
    """
    n = len(marks)
    k = 0
    while k < n:  # every group of consecutive volta measures needs an end repeat to send the player back
        if marks[k].endings:
            g = k
            while g < n and marks[g].endings:
                g += 1
            if not any(mk.end for mk in marks[k:g]):
                return None
            k = g
        k += 1
    order: list[int] = []
    i, sec, passno = 0, 0, 1
    while i < n:
        if len(order) > MAX_EXPANSION * n:
            return None
        m = marks[i]
        if m.start and i != sec:
            sec, passno = i, 1
        if m.endings and passno not in m.endings:
            i += 1
            continue
        order.append(i)
        group_end = i + 1  # the volta brackets that follow this one, up to the first measure without a bracket
        while group_end < n and marks[group_end].endings:
            group_end += 1
        if m.end:
            if m.endings:
                again = any(k > passno for mk in marks[i + 1:group_end] for k in mk.endings)
            else:
                again = passno < m.end
            if again:
                passno, i = passno + 1, sec
                continue
            sec, passno = i + 1, 1
        elif m.endings and group_end == i + 1:
            sec, passno = i + 1, 1  # the last volta is over: the next section starts here
        i += 1
    if len(set(order)) != n:
        return None
    return order


def repeat_marks(score, measures) -> tuple[list[RepeatMarks], bool]:
    """music21 measures -> RepeatMarks per measure, and whether repeat expressions (D.C., segno, coda, fine)
    appear (those are left to music21's Expander)."""
    from music21 import bar, repeat

    endings: list[set[int]] = [set() for _ in measures]
    for rb, lo, hi in _brackets(score, measures):
        nums = {int(k) for k in (rb.numberRange or [])}
        for k in range(lo, hi + 1):
            endings[k] |= nums
    start = [False] * len(measures)
    end = [0] * len(measures)
    expressions = False
    for k, m in enumerate(measures):
        lb, rb_ = m.leftBarline, m.rightBarline
        if isinstance(lb, bar.Repeat):
            if lb.direction == "start":
                start[k] = True
            elif k > 0:
                end[k - 1] = max(end[k - 1], int(lb.times or 2))
        if isinstance(rb_, bar.Repeat):
            if rb_.direction == "end":
                end[k] = max(end[k], int(rb_.times or 2))
            elif k + 1 < len(measures):
                start[k + 1] = True
        if not expressions and m.getElementsByClass(repeat.RepeatExpression):
            expressions = True
    return [RepeatMarks(s, e, frozenset(x)) for s, e, x in zip(start, end, endings)], expressions


def _brackets(score, measures) -> list[tuple[object, int, int]]:
    """(RepeatBracket, first, last measure index) of each volta bracket over these measures. A bracket covers
    every measure from its first to its last spanned one (music21's ABC import spans only those two)."""
    from music21 import spanner

    index = {id(m): k for k, m in enumerate(measures)}
    out = []
    for rb in score.recurse().getElementsByClass(spanner.RepeatBracket):
        ks = [index[id(m)] for m in rb.getSpannedElements() if id(m) in index]
        if ks:
            out.append((rb, min(ks), max(ks)))
    return out


def expand_measures(score, measures) -> tuple[list[int] | None, str, str]:
    """(played order or None, status, detail) for a part's measures; see `piece_from_score`."""
    marks, expressions = repeat_marks(score, measures)
    if not expressions and not any(m.start or m.end or m.endings for m in marks):
        return None, "none", ""
    if not expressions:
        order = played_order(marks)
        if order is None:
            return None, "not expanded", ("malformed repeats (voltas without an end repeat, a measure never "
                                          "played, or a runaway order)")
        if order == list(range(len(measures))):
            return None, "none", ""
        return order, "expanded", ""
    try:  # D.C./segno/coda: music21's Expander on a copy of the bar lines only (no notes: fast)
        order = _music21_order(score, measures)
    except Exception as exc:
        return None, "not expanded", f"music21 cannot expand the repeats ({_first_line(exc)})"
    return (None, "none", "") if order == list(range(len(measures))) else (order, "expanded", "")


_TAG = "app-measure-"


def _music21_order(score, measures) -> list[int]:
    """Played order by music21's `repeat.Expander` run on a skeleton part (empty measures with the same bar lines,
    voltas and repeat expressions), mapped back by a group tag on each measure (the Expander renumbers measures
    after a D.C.). Raises when music21 cannot expand it."""
    import copy

    from music21 import repeat, spanner, stream

    skeleton = stream.Part()
    copies = []
    for k, m in enumerate(measures):
        s = stream.Measure(number=k + 1)
        s.groups.append(f"{_TAG}{k}")
        if m.leftBarline is not None:
            s.leftBarline = copy.deepcopy(m.leftBarline)
        if m.rightBarline is not None:
            s.rightBarline = copy.deepcopy(m.rightBarline)
        for e in m.getElementsByClass(repeat.RepeatExpression):
            s.insert(float(e.offset), copy.deepcopy(e))
        skeleton.append(s)
        copies.append(s)
    for rb, lo, hi in _brackets(score, measures):
        skeleton.insert(0, spanner.RepeatBracket(copies[lo:hi + 1], number=rb.number))
    post = repeat.Expander(skeleton).process()
    order = [next((int(g[len(_TAG):]) for g in m.groups if g.startswith(_TAG)), -1)
             for m in post.getElementsByClass(stream.Measure)]
    if not order or any(not 0 <= k < len(measures) for k in order) or len(order) > MAX_EXPANSION * len(measures):
        raise ValueError(f"expansion gave an order of {len(order)} measures from {len(measures)}")
    return order


@contextlib.contextmanager
def abc_parsing():
    """While active, music21's ABC import skips two steps we never use, which cost two thirds of its time:
    beaming (`Stream.makeBeams`, engraving only) and re-barring (`translate.reBar`, which splits an over-full
    measure and invents a time signature such as 1/16 for the remainder -- a metre the tune does not have; the
    over-full measure is kept whole instead and `_metre` starts the next bar after it). Notes and offsets are the
    same either way. Process-wide while active: build workers are processes, and nothing else parses scores."""
    from music21 import stream
    from music21.abcFormat import translate

    saved = stream.Stream.makeBeams, translate.reBar

    def no_beams(self, *args, inPlace=False, **kwargs):
        return None if inPlace else self

    def no_rebar(part, *, inPlace=False):
        return None if inPlace else part

    stream.Stream.makeBeams, translate.reBar = no_beams, no_rebar
    try:
        yield
    finally:
        stream.Stream.makeBeams, translate.reBar = saved


def _scores(parsed) -> list:
    from music21 import stream

    if isinstance(parsed, stream.Opus):
        return list(parsed.scores)
    return [parsed]


def count_tunes(path: str, limits: ReadLimits = DEFAULT_LIMITS) -> int:
    """Number of tunes read from an ABC file (0 if it cannot be read, at most limits.max_tunes_per_file); lets a
    build share one big file among workers."""
    try:
        return min(len(_X_LINE.findall(_decode_text(_read_bounded(path, limits)))) or 1,
                   limits.max_tunes_per_file)
    except (OSError, LimitExceeded):
        return 0


def _read_bounded(path: str, limits: ReadLimits) -> bytes:
    """A regular file's bytes, refusing (LimitExceeded "too large") one above limits.max_file_bytes before reading.

    Opens without blocking and checks the opened file is regular, so a FIFO or device named .mid never hangs.
    """
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise LimitExceeded("not a regular file", "a FIFO, device or socket is never read")
        if st.st_size > limits.max_file_bytes:
            raise LimitExceeded("too large", f"{st.st_size:,} bytes; the limit is {limits.max_file_bytes:,} "
                                             f"(ReadLimits.max_file_bytes)")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(limits.max_file_bytes + 1)
        if len(data) > limits.max_file_bytes:  # grew while we read it
            raise LimitExceeded("too large", f"more than {limits.max_file_bytes:,} bytes "
                                             f"(ReadLimits.max_file_bytes)")
        return data
    finally:
        if fd >= 0:
            os.close(fd)


def _checked(piece: RawPiece, limits: ReadLimits) -> RawPiece:
    """Raise LimitExceeded if the piece's notes cross the length limits (from the note list: no grid built)."""
    check_notes([n for t in piece.tracks for n in t.notes], limits)
    return piece


def read_file(src: SourceFile, tunes: tuple[int, int] | None = None, limits: ReadLimits = DEFAULT_LIMITS
              ) -> tuple[list[RawPiece], list[Skip]]:
    """Read one file into pieces. Never raises for bad content: problems come back as Skips.

    Piece names are `label` for single-piece files, `label#X:n` for ABC tunes and `label#k` for scores in an opus.
    tunes=(lo, hi) reads only ABC tunes lo..hi-1 (0-based, file order); other file types ignore it.
    `limits` bounds the work (app.music.limits): a file, tune or piece that crosses one is skipped with the limit's
    reason ("too large", "too long", "too many notes") before its grid is built.
    """
    try:
        data = _read_bounded(src.path, limits)
    except LimitExceeded as exc:
        return [], [Skip(src.label, exc.reason, exc.detail)]
    except OSError as exc:
        return [], [Skip(src.label, "unreadable", f"cannot read: {exc.strerror or exc}")]
    if not data.strip():
        return [], [Skip(src.label, "empty file", f"{len(data)} bytes")]
    kind = src.kind
    if kind == "midi":
        from app.music.smf import SmfError, read_smf

        try:
            return [_checked(read_smf(data, src.label, limits), limits)], []
        except (SmfError, LimitExceeded) as exc:
            return [], [Skip(src.label, exc.reason, exc.detail)]
        except Exception as exc:  # a bug, not bad input: still one skipped file, never a failed build
            return [], [Skip(src.label, "unreadable", _first_line(exc))]
    from music21 import converter

    if kind == "abc":
        pieces, skips = [], []
        all_tunes = split_abc(_decode_text(data))
        if not all_tunes:
            return [], [Skip(src.label, "empty file", "no ABC tunes")]
        if len(all_tunes) > limits.max_tunes_per_file:
            skips.append(Skip(f"{src.label}#X:{all_tunes[limits.max_tunes_per_file][0]}", "too many tunes",
                              f"{len(all_tunes):,} tunes; only the first {limits.max_tunes_per_file:,} are read "
                              f"(ReadLimits.max_tunes_per_file)"))
            if tunes is not None and tunes[0] > 0:
                skips = []  # reported once, by the part that starts the file
            all_tunes = all_tunes[:limits.max_tunes_per_file]
        with abc_parsing():
            notes = 0
            for tune_id, text in all_tunes[slice(*tunes) if tunes else slice(None)]:
                name = f"{src.label}#X:{tune_id}"
                if len(text) > limits.max_tune_chars:
                    skips.append(Skip(name, "too large", f"tune of {len(text):,} characters; the limit is "
                                                         f"{limits.max_tune_chars:,} (ReadLimits.max_tune_chars)"))
                    continue
                try:
                    with cpu_budget(limits.max_parse_seconds, "the tune"):
                        parsed = converter.parse(text, format="abc")
                    for k, sc in enumerate(_scores(parsed)):
                        piece = _checked(piece_from_score(sc, name if k == 0 else f"{name}#{k}"), limits)
                        notes += sum(len(t.notes) for t in piece.tracks)
                        if notes > limits.max_notes:
                            raise LimitExceeded("too many notes", f"the file has more than {limits.max_notes:,} "
                                                                  f"notes (ReadLimits.max_notes)")
                        pieces.append(piece)
                except LimitExceeded as exc:
                    skips.append(Skip(name, exc.reason, exc.detail))
                    if exc.reason == "too many notes":
                        break
                except Exception as exc:  # music21's ABC parser raises many types on malformed input
                    skips.append(Skip(name, "unreadable", f"ABC parse error ({_first_line(exc)})"))
        return pieces, skips
    if len(data) > limits.max_score_bytes:
        return [], [Skip(src.label, "too large", f"{len(data):,} bytes; the limit for scores is "
                                                 f"{limits.max_score_bytes:,} (ReadLimits.max_score_bytes)")]
    try:
        with cpu_budget(limits.max_parse_seconds, "the score"):
            scores = _scores(converter.parse(src.path))  # size and file type were checked above
            pieces = [_checked(piece_from_score(sc, src.label if len(scores) == 1 else f"{src.label}#{k}"), limits)
                      for k, sc in enumerate(scores)]
        if sum(len(t.notes) for p in pieces for t in p.tracks) > limits.max_notes:
            raise LimitExceeded("too many notes", f"more than {limits.max_notes:,} notes (ReadLimits.max_notes)")
        return pieces, []
    except LimitExceeded as exc:
        return [], [Skip(src.label, exc.reason, exc.detail)]
    except Exception as exc:
        return [], [Skip(src.label, "unreadable", f"score parse error ({_first_line(exc)})")]

"""A bounded, linear reader of Standard MIDI Files (bytes -> `RawPiece`), used for every MIDI file we read.

Why not pretty_midi for reading: it pairs note-offs with open notes by scanning them (quadratic on dense files:
20,000 notes at one instant took 6.6 s), allocates one float per tick of the file's length (a 101-byte file can
ask for 10 million), and goes through mido, which costs ~15 us per event before any limit can be checked. This
reader walks the bytes once, counts notes as it goes and stops at the first crossed `ReadLimits` bound.

Semantics follow pretty_midi (so results match what the project read before):
  * a note-on with velocity 0 is a note-off; a note-off for (channel, pitch) ends every open note of that key that
    started at an earlier tick (notes started at the same tick stay open; if none started earlier, the key's open
    notes are forgotten);
  * notes are grouped into tracks by (track chunk, channel, program at the note's end); channel 10 (index 9) is
    drums; a track's name is the chunk's first track-name meta event;
  * the first tempo (qpm) comes from the first track chunk (120 qpm if absent, or if the first tempo is not at
    tick 0); every time signature of any track is kept as the piece's metre (4/4 from 0 if absent);
  * times are ticks / ticks-per-quarter, so onsets are in quarter notes (tempo changes never move a note).
Damaged files raise SmfError with a reason: "truncated" (with the byte offset where the data ends), "not MIDI",
"unreadable" (bad structure, with the byte offset), or LimitExceeded ("too long", "too many notes").
"""

from __future__ import annotations

from bisect import bisect_left

from app.music.limits import DEFAULT_LIMITS, LimitExceeded, ReadLimits
from app.music.melody import RawPiece, RawTrack

# data bytes after a channel status byte, by its high nibble
_DATA_LEN = {0x8: 2, 0x9: 2, 0xA: 2, 0xB: 2, 0xC: 1, 0xD: 1, 0xE: 2}


class SmfError(Exception):
    """A MIDI file that cannot be read; `reason` is the skip reason code, `detail` says where and why."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _truncated(what: str, offset: int, size: int) -> SmfError:
    return SmfError("truncated", f"{what} at byte {offset} runs past the end of the file ({size} bytes)")


def read_smf(data: bytes, name: str, limits: ReadLimits = DEFAULT_LIMITS) -> RawPiece:
    """MIDI file bytes -> RawPiece (see the module docstring). Raises SmfError or LimitExceeded."""
    size = len(data)
    if size > limits.max_file_bytes:
        raise LimitExceeded("too large", f"{size:,} bytes; the limit is {limits.max_file_bytes:,} "
                                         f"(ReadLimits.max_file_bytes)")
    if data[:4] != b"MThd":
        if data[:4] == b"RIFF" and data[8:12] == b"RMID":
            raise SmfError("not MIDI", "RIFF-wrapped MIDI (.rmi) is not supported; extract the MIDI data")
        raise SmfError("not MIDI", f"no MThd header (starts with {data[:8]!r})")
    if size < 14:
        raise _truncated("the MThd header", 0, size)
    hlen = int.from_bytes(data[4:8], "big")
    if hlen < 6:
        raise SmfError("unreadable", f"MThd header length {hlen} < 6")
    fmt = int.from_bytes(data[8:10], "big")
    ntracks = int.from_bytes(data[10:12], "big")
    division = int.from_bytes(data[12:14], "big")
    if fmt > 2:
        raise SmfError("unreadable", f"MIDI format {fmt} (expected 0, 1 or 2)")
    if division & 0x8000:
        raise SmfError("unreadable", "SMPTE time division (frames per second) is not supported; "
                                     "save the file with ticks per quarter note")
    if division == 0:
        raise SmfError("unreadable", "0 ticks per quarter note in the MThd header")
    pos = 8 + hlen
    if pos > size:
        raise _truncated("the MThd header", 0, size)
    chunks: list[tuple[int, int]] = []  # (start, end) of each MTrk body
    while len(chunks) < ntracks:
        if pos + 8 > size:
            raise SmfError("truncated", f"the header declares {ntracks} track(s) but the file ends at byte {size} "
                                        f"after {len(chunks)}")
        ctype, clen = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        if pos + 8 + clen > size:
            raise _truncated(f"track chunk {len(chunks)} ({clen:,} bytes declared)", pos, size)
        if ctype == b"MTrk":
            chunks.append((pos + 8, pos + 8 + clen))
        pos += 8 + clen
    notes_seen = [0]
    tracks: list[RawTrack] = []
    tempo = None
    sigs: list[tuple[int, int, int]] = []
    for k, (start, end) in enumerate(chunks):
        found = _read_track(data, start, end, k, division, limits, notes_seen)
        tracks.extend(found["tracks"])
        sigs += found["sigs"]
        if k == 0:
            tempo = found["tempo"]
    qpm = round(60_000_000 / tempo, 3) if tempo else 120.0
    metre = metre_from_ticks(sigs, division)
    return RawPiece(name=name, tracks=tuple(tracks), qpm=qpm, time_signature=metre[0][1:], metre=metre)


def metre_from_ticks(sigs: list[tuple[int, int, int]], division: int) -> tuple[tuple[float, int, int], ...]:
    """Time-signature events (tick, num, den), from any track -> the piece's metre as (onset in quarters, num,
    den): sorted, the later of two events at one time wins, repeats of the same signature dropped, 4/4 (or the
    first signature) from 0 when the first event comes later."""
    metre: list[tuple[float, int, int]] = []
    for tick, num, den in sorted(sigs, key=lambda s: s[0]):  # stable: the later event at one tick stays later
        q = tick / division
        if metre and metre[-1][0] == q:
            metre.pop()
        if not metre or metre[-1][1:] != (num, den):
            metre.append((q, num, den))
    if not metre or metre[0][0] > 0:
        metre.insert(0, (0.0, *(metre[0][1:] if metre else (4, 4))))
    return tuple(metre)


def _read_track(data: bytes, pos: int, end: int, k: int, division: int, limits: ReadLimits,
                notes_seen: list[int]) -> dict:
    """One MTrk body -> {"tracks": [RawTrack], "tempo": us per quarter at tick 0 or None, "sig": (n, d) or None}."""
    tick = 0
    status = 0
    max_ticks = limits.max_ticks
    max_notes = limits.max_notes
    max_note_ticks = limits.max_note_quarters * division
    program = [0] * 16
    open_notes: dict[int, list] = {}  # key channel*128+pitch -> [head index, starts list]
    groups: dict[tuple[int, int], list] = {}  # (channel, program) -> [(pitch, on_tick, off_tick)]
    name = None
    tempo = sig = None
    sigs: list[tuple[int, int, int]] = []  # every time signature: (tick, numerator, denominator)
    while pos < end:
        # delta time: variable-length quantity, at most 4 bytes
        delta = 0
        for _ in range(4):
            if pos >= end:
                raise _truncated(f"track {k}: an event", pos, end)
            b = data[pos]
            pos += 1
            delta = (delta << 7) | (b & 0x7F)
            if b < 0x80:
                break
        else:
            raise SmfError("unreadable", f"track {k}: delta time longer than 4 bytes at byte {pos - 4}")
        tick += delta
        if tick > max_ticks:
            raise LimitExceeded("too long", f"track {k} reaches tick {tick:,}; the limit is {max_ticks:,} "
                                            f"(ReadLimits.max_ticks)")
        if pos >= end:
            raise _truncated(f"track {k}: an event", pos, end)
        b = data[pos]
        if b >= 0x80:
            pos += 1
            if b < 0xF0:
                status = b
            elif b == 0xFF:  # meta event: type, length, data
                if pos >= end:
                    raise _truncated(f"track {k}: a meta event", pos, end)
                mtype = data[pos]
                pos += 1
                mlen, pos = _varlen(data, pos, end, k)
                if pos + mlen > end:
                    raise _truncated(f"track {k}: a meta event ({mlen} bytes)", pos, end)
                body = data[pos:pos + mlen]
                pos += mlen
                if mtype == 0x2F:
                    break  # end of track
                if mtype == 0x03 and name is None:
                    name = body.decode("latin-1")
                elif mtype == 0x51 and mlen == 3 and tick == 0 and int.from_bytes(body, "big") > 0:
                    tempo = int.from_bytes(body, "big")  # pretty_midi: the last tempo at tick 0 is the first
                elif mtype == 0x58 and mlen >= 2 and body[0] > 0 and body[1] < 16:
                    if sig is None:
                        sig = (int(body[0]), 1 << body[1])
                    if len(sigs) < limits.max_metre_changes:
                        sigs.append((tick, int(body[0]), 1 << body[1]))
                continue
            elif b in (0xF0, 0xF7):  # sysex: length, data
                slen, pos = _varlen(data, pos, end, k)
                if pos + slen > end:
                    raise _truncated(f"track {k}: a sysex event ({slen} bytes)", pos, end)
                pos += slen
                continue
            else:
                raise SmfError("unreadable", f"track {k}: status byte {b:#04x} is not allowed in a MIDI file "
                                             f"(byte {pos - 1})")
        elif status == 0:
            raise SmfError("unreadable", f"track {k}: data byte {b:#04x} without a status byte (byte {pos})")
        n = _DATA_LEN[status >> 4]
        if pos + n > end:
            raise _truncated(f"track {k}: a channel event", pos, end)
        d1 = data[pos]
        d2 = data[pos + 1] if n == 2 else 0
        if d1 > 0x7F or d2 > 0x7F:
            raise SmfError("unreadable", f"track {k}: data byte above 127 at byte {pos}")
        pos += n
        kind = status >> 4
        ch = status & 0x0F
        if kind == 0x9 and d2 > 0:  # note on
            notes_seen[0] += 1
            if notes_seen[0] > max_notes:
                raise LimitExceeded("too many notes", f"more than {max_notes:,} notes "
                                                      f"(ReadLimits.max_notes)")
            slot = open_notes.get(ch * 128 + d1)
            if slot is None:
                open_notes[ch * 128 + d1] = [0, [tick]]
            else:
                slot[1].append(tick)
        elif kind == 0x8 or kind == 0x9:  # note off (or note on with velocity 0)
            slot = open_notes.get(ch * 128 + d1)
            if slot is None:
                continue
            head, starts = slot
            split = bisect_left(starts, tick, head)  # starts are in time order; same-tick notes stay open
            if split == head:  # nothing to end: pretty_midi forgets the key's open notes (same-tick ones too)
                del open_notes[ch * 128 + d1]
            else:
                group = groups.setdefault((ch, program[ch]), [])
                for on in starts[head:split]:
                    if tick - on > max_note_ticks:
                        raise LimitExceeded("too long", f"track {k} has a note {(tick - on) / division:,.0f} "
                                                        f"quarter notes long; the limit is "
                                                        f"{limits.max_note_quarters:,.0f} "
                                                        f"(ReadLimits.max_note_quarters)")
                    group.append((d1, on / division, tick / division))
                if split == len(starts):
                    del open_notes[ch * 128 + d1]
                else:
                    slot[0] = split
        elif kind == 0xC:
            program[ch] = d1
    tracks = []
    for (ch, prog), notes in groups.items():
        tracks.append(RawTrack(name=name or "", notes=tuple(notes), program=prog, is_drum=ch == 9))
    return {"tracks": tracks, "tempo": tempo, "sig": sig, "sigs": sigs}


def _varlen(data: bytes, pos: int, end: int, k: int) -> tuple[int, int]:
    value = 0
    for _ in range(4):
        if pos >= end:
            raise _truncated(f"track {k}: a length", pos, end)
        b = data[pos]
        pos += 1
        value = (value << 7) | (b & 0x7F)
        if b < 0x80:
            return value, pos
    raise SmfError("unreadable", f"track {k}: length longer than 4 bytes at byte {pos - 4}")

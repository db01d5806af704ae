"""Uploads for the web page: size and count limits, MIDI/zip only, zip extraction that cannot escape, safe names.

Defaults (UploadLimits(); `python -m app web --max-files/--max-file-mb` change the first two):
    max_files          20 files per upload (MIDI files and zips counted alike)
    max_file_bytes     5 MiB per uploaded file (a zip counts as one file)
    max_total_bytes    50 MiB per upload, all files together
    max_zip_entries    200 MIDI entries in one zip
    max_unzipped_bytes 100 MiB unpacked from all zips of one upload (zip bombs stop here)
    max_piece_quarters 4096 quarter notes per MIDI file (16,384 steps at 4 per quarter), from its last note event
    max_notes          20,000 notes per MIDI file (and at most 10 times as many events of any kind)
    max_job_quarters   100,000 quarter notes in all the files of one retraining job

The last three are checked by `midi_extent`, a scan of the file's events that builds nothing (linear in its
bytes), before any file is read for real: a 101-byte file with one note 10 million ticks long is refused at once.

Only MIDI is accepted: a file must be named *.mid / *.midi and start with the Standard MIDI File header "MThd",
or be a *.zip (a real zip archive) whose MIDI entries are taken. Any other file in the upload is an error that
names the file; inside a zip, entries that are not MIDI (a README, a folder) are skipped and listed.

Zip entries never escape the upload folder: an entry is never extracted under its own path. Its file name (last
path component only) is sanitised to [A-Za-z0-9._-] and made unique, and the final path is checked to lie inside
the folder; symbolic links and entries that claim one size but hold more are refused.
"""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from app.errors import DataError, OptionError

MIDI_SUFFIXES = (".mid", ".midi")
ZIP_SUFFIXES = (".zip",)
MIDI_MAGIC = b"MThd"
MiB = 1 << 20
MODEL_NAME_MAX = 40
RESERVED_NAMES = {"con", "prn", "aux", "nul", "com1", "lpt1"}  # harmless on Linux, confusing elsewhere


@dataclass(frozen=True)
class UploadLimits:
    max_files: int = 20
    max_file_bytes: int = 5 * MiB
    max_total_bytes: int = 50 * MiB
    max_zip_entries: int = 200
    max_unzipped_bytes: int = 100 * MiB
    max_piece_quarters: int = 4096
    max_notes: int = 20_000
    max_job_quarters: int = 100_000

    def describe(self) -> str:
        return (f"MIDI files (.mid, .midi) or .zip archives of them; at most {self.max_files} files, "
                f"{_mb(self.max_file_bytes)} each, {_mb(self.max_total_bytes)} in all")


@dataclass
class UploadResult:
    """MIDI files now inside the upload folder, and what was left out (name, reason)."""

    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _mb(n: int) -> str:
    return f"{n / MiB:g} MB"


# --- names ---------------------------------------------------------------------------------------------------------
def sanitize_model_name(name: str | None) -> str:
    """A user's model name -> a safe folder name: lower-case [a-z0-9_-], at most MODEL_NAME_MAX characters.

    Runs of other characters (spaces, dots, slashes, accents) become one "-"; leading/trailing "-" and "_" go.
    Raises OptionError when nothing usable is left."""
    text = (name or "").strip().lower()
    safe = re.sub(r"[^a-z0-9_-]+", "-", text).strip("-_")[:MODEL_NAME_MAX].strip("-_")
    if not safe:
        raise OptionError(f"model name {name!r} has no usable characters; use letters, digits, '-' or '_' "
                          f"(e.g. my-tunes)")
    if safe in RESERVED_NAMES:
        raise OptionError(f"model name {name!r} is reserved; choose another")
    return safe


def safe_file_name(name: str, default: str = "file") -> str:
    """The last path component of `name` (either slash), sanitised to [A-Za-z0-9._-], never '.', '..' or hidden."""
    base = re.split(r"[\\/]", name or "")[-1]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")[:100]
    return safe or default


def _unique(folder: Path, name: str) -> Path:
    stem, suffix = Path(name).stem or "file", Path(name).suffix
    candidate, k = folder / name, 1
    while candidate.exists():
        k += 1
        candidate = folder / f"{stem}-{k}{suffix}"
    return candidate


def _inside(folder: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


# --- checks --------------------------------------------------------------------------------------------------------
def is_midi_bytes(head: bytes) -> bool:
    return head[:4] == MIDI_MAGIC


def check_midi_file(path: str | Path, display: str | None = None, limits: UploadLimits = UploadLimits()) -> Path:
    """One uploaded file that must be a MIDI file (e.g. a primer): name, size and header. Returns the path."""
    p = Path(path)
    shown = display or p.name
    if p.suffix.lower() not in MIDI_SUFFIXES:
        raise DataError(f"{shown!r} is not a MIDI file; upload a .mid or .midi file")
    size = p.stat().st_size
    if size > limits.max_file_bytes:
        raise DataError(f"{shown!r} is {_mb(size)}; the limit is {_mb(limits.max_file_bytes)} per file")
    with open(p, "rb") as f:
        if not is_midi_bytes(f.read(4)):
            raise DataError(f"{shown!r} is not a MIDI file (it does not start with the MIDI header 'MThd'); "
                            f"upload a Standard MIDI File")
    return p


@dataclass(frozen=True)
class MidiExtent:
    """What a scan of a MIDI file's events finds: the time of its last note event in quarter notes (a file timed
    in SMPTE frames is counted at 120 quarter notes per minute) and its number of notes (note-ons)."""

    quarters: float
    notes: int


def midi_extent(path: str | Path, display: str | None = None, *, max_quarters: float | None = None,
                max_notes: int | None = None) -> MidiExtent:
    """Scan a Standard MIDI File's tracks event by event (nothing is built; linear in its bytes) and stop with a
    DataError as soon as it is longer than `max_quarters` or has more than `max_notes` notes, or is malformed."""
    import struct

    p = Path(path)
    shown = display or p.name
    data = p.read_bytes()
    if data[:4] != MIDI_MAGIC or len(data) < 14:
        raise DataError(f"{shown!r} is not a MIDI file (no complete 'MThd' header); upload a Standard MIDI File")
    header_len = int.from_bytes(data[4:8], "big")
    _fmt, _tracks, division = struct.unpack(">HHH", data[8:14])
    if division & 0x8000:
        ticks_per_quarter = (256 - (division >> 8)) * (division & 0xFF) / 2.0  # SMPTE: half a second per quarter
    else:
        ticks_per_quarter = float(division)
    if ticks_per_quarter <= 0:
        raise DataError(f"{shown!r} has a time division of 0 ticks per quarter note; it is not a usable MIDI file")
    limit_ticks = None if max_quarters is None else max_quarters * ticks_per_quarter
    end_ticks, notes, events, pos, n = 0, 0, 0, 8 + header_len, len(data)
    max_events = None if max_notes is None else 10 * max_notes + 1000

    def vlq(i: int) -> tuple[int, int]:
        value = 0
        for _ in range(4):
            b = data[i]
            i += 1
            value = (value << 7) | (b & 0x7F)
            if b < 0x80:
                return value, i
        raise ValueError("variable-length number over 4 bytes")

    try:
        while pos + 8 <= n:
            chunk, length = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
            pos += 8
            end = min(pos + length, n)
            if chunk == b"MTrk":
                i, t, status = pos, 0, 0
                while i < end:
                    events += 1
                    if max_events is not None and events > max_events:
                        raise DataError(f"{shown!r} has more than {max_events:,} MIDI events; the limit is "
                                        f"{max_notes:,} notes per file")
                    delta, i = vlq(i)
                    t += delta
                    b = data[i]
                    if b == 0xFF:
                        kind = data[i + 1]
                        size, i = vlq(i + 2)
                        i += size
                        if kind == 0x2F:
                            break
                        continue
                    if b in (0xF0, 0xF7):
                        size, i = vlq(i + 1)
                        i += size
                        continue
                    if b & 0x80:
                        status, i = b, i + 1
                    elif not status:
                        raise ValueError(f"data byte without a status at byte {i}")
                    kind = status & 0xF0
                    if kind in (0x80, 0x90):
                        if kind == 0x90 and data[i + 1] > 0:
                            notes += 1
                            if max_notes is not None and notes > max_notes:
                                raise DataError(f"{shown!r} has more than {max_notes:,} notes; the limit is "
                                                f"{max_notes:,} per file")
                        end_ticks = max(end_ticks, t)
                        if limit_ticks is not None and end_ticks > limit_ticks:
                            raise DataError(f"{shown!r} is longer than {max_quarters:,.0f} quarter notes (a note "
                                            f"event at quarter {end_ticks / ticks_per_quarter:,.0f}); the limit "
                                            f"is {max_quarters:,.0f} quarter notes per file")
                    i += 1 if kind in (0xC0, 0xD0) else 2
            pos = end
    except (IndexError, ValueError) as exc:
        where = "it ends in the middle of an event" if isinstance(exc, IndexError) else str(exc)
        raise DataError(f"{shown!r} is not a readable MIDI file ({where})") from None
    return MidiExtent(end_ticks / ticks_per_quarter, notes)


def _display_name(path: Path, names: Sequence[str] | None, i: int) -> str:
    return names[i] if names is not None and i < len(names) and names[i] else path.name


def collect_uploads(paths: Iterable[str | Path], dest: str | Path, limits: UploadLimits = UploadLimits(),
                    names: Sequence[str] | None = None) -> UploadResult:
    """Check the uploaded files and copy their MIDI files (and the MIDI entries of zips) into `dest`.

    names: the names the user's files had (Gradio stores uploads under its own paths); used in messages and as
    the base of the copied names. Raises DataError for a file that is neither MIDI nor zip, for a file or upload
    over the limits, or when nothing usable is left."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise DataError(f"no files uploaded; upload {limits.describe()}")
    if len(paths) > limits.max_files:
        raise DataError(f"{len(paths)} files uploaded; the limit is {limits.max_files} (put more in a .zip)")
    total = 0
    kinds = []
    for i, p in enumerate(paths):
        shown = _display_name(p, names, i)
        if not p.is_file():
            raise DataError(f"upload {shown!r} is missing on the server; upload it again")
        size = p.stat().st_size
        if size > limits.max_file_bytes:
            raise DataError(f"{shown!r} is {size / MiB:.1f} MB; the limit is {_mb(limits.max_file_bytes)} per file")
        total += size
        if total > limits.max_total_bytes:
            raise DataError(f"the upload is over {_mb(limits.max_total_bytes)} in all; upload fewer files")
        suffix = Path(shown).suffix.lower()
        with open(p, "rb") as f:
            head = f.read(4)
        if suffix in MIDI_SUFFIXES:
            if not is_midi_bytes(head):
                raise DataError(f"{shown!r} is not a MIDI file (it does not start with the MIDI header 'MThd'); "
                                f"upload Standard MIDI Files")
            kinds.append("midi")
        elif suffix in ZIP_SUFFIXES:
            if not zipfile.is_zipfile(p):
                raise DataError(f"{shown!r} is not a readable zip archive")
            kinds.append("zip")
        else:
            raise DataError(f"{shown!r} is not accepted: upload {limits.describe()}")

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    result = UploadResult()
    unzipped = [0]
    for i, (p, kind) in enumerate(zip(paths, kinds)):
        shown = _display_name(p, names, i)
        if kind == "midi":
            target = _unique(dest, safe_file_name(shown, "upload.mid"))
            shutil.copyfile(p, target)
            result.files.append(target)
        else:
            _extract_zip(p, shown, dest, limits, result, unzipped)
    if not result.files:
        why = "; ".join(f"{n}: {r}" for n, r in result.skipped[:5])
        raise DataError("no MIDI files in the upload" + (f" ({why})" if why else "") +
                        f"; upload {limits.describe()}")
    return result


def _extract_zip(path: Path, shown: str, dest: Path, limits: UploadLimits, result: UploadResult,
                 unzipped: list[int]) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{shown!r} is not a readable zip archive ({exc})") from None
    with zf:
        taken = 0
        for info in zf.infolist():
            entry = info.filename
            label = f"{shown}:{entry}"
            if info.is_dir():
                continue
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                result.skipped.append((label, "symbolic link, not extracted"))
                continue
            if PurePosixPath(entry.replace("\\", "/")).suffix.lower() not in MIDI_SUFFIXES:
                result.skipped.append((label, "not a .mid/.midi file"))
                continue
            if info.flag_bits & 0x1:
                result.skipped.append((label, "encrypted"))
                continue
            taken += 1
            if taken > limits.max_zip_entries:
                raise DataError(f"{shown!r} holds more than {limits.max_zip_entries} MIDI files; the limit is "
                                f"{limits.max_zip_entries} per zip")
            if info.file_size > limits.max_file_bytes:
                result.skipped.append((label, f"{info.file_size / MiB:.1f} MB unpacked, over the "
                                              f"{_mb(limits.max_file_bytes)} limit"))
                continue
            name = safe_file_name(entry, "entry.mid")
            target = _unique(dest, name)
            if not _inside(dest, target):  # cannot happen with a sanitised base name; kept as a guard
                raise DataError(f"{label!r} would be written outside the upload folder; refused")
            try:
                with zf.open(info) as src:
                    # never trust the header's size: read at most the limit + 1 byte
                    data = src.read(limits.max_file_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError) as exc:
                result.skipped.append((label, f"unreadable zip entry ({type(exc).__name__})"))
                continue
            if len(data) > limits.max_file_bytes:
                result.skipped.append((label, f"over the {_mb(limits.max_file_bytes)} limit when unpacked"))
                continue
            unzipped[0] += len(data)
            if unzipped[0] > limits.max_unzipped_bytes:
                raise DataError(f"the zip files unpack to more than {_mb(limits.max_unzipped_bytes)}; "
                                f"upload fewer or smaller files")
            if not is_midi_bytes(data):
                result.skipped.append((label, "not a MIDI file (no 'MThd' header)"))
                continue
            target.write_bytes(data)
            result.files.append(target)


__all__ = ["UploadLimits", "UploadResult", "sanitize_model_name", "safe_file_name", "check_midi_file",
           "collect_uploads", "is_midi_bytes"]

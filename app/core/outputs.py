"""Output files: timestamped names that never overwrite, and atomic writes."""

from __future__ import annotations

import datetime as _dt
import functools
import os
import tempfile
from pathlib import Path

from app.errors import OutputError


def ensure_dir(path: str | Path) -> Path:
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {str(p)!r}: {exc.strerror}; choose another with --out-dir")
    if not os.access(p, os.W_OK):
        raise OutputError(f"output folder {str(p)!r} is not writable; choose another with --out-dir")
    return p


def timestamp() -> str:
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S")


def unique_stem(folder: Path, stem: str, suffixes: tuple[str, ...]) -> Path:
    """folder/stem, or folder/stem-2, -3 ... so that no file stem+suffix already exists."""
    candidate, k = folder / stem, 1
    while any(candidate.with_name(candidate.name + s).exists() for s in suffixes):
        k += 1
        candidate = folder / f"{stem}-{k}"
    return candidate


@functools.cache  # os.umask can only be read by setting it: do that once, not while threads write files
def file_mode() -> int:
    """The mode an ordinary new file gets here (0o666 less the umask); temporary files start private."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write(path: str | Path, data: str | bytes) -> Path:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    p = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
        os.fchmod(fd, file_mode())  # mkstemp makes the file private; outputs are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, p)
    except OSError as exc:
        raise OutputError(f"cannot write {str(p)!r}: {exc.strerror}") from None
    return p

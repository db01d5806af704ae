"""Output files: timestamped names that never overwrite (reserved atomically across processes), atomic writes,
and folders replaced in one step with crash leftovers cleaned on the next run."""

from __future__ import annotations

import datetime as _dt
import errno
import functools
import json
import os
import re
import shutil
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
    """folder/stem, or folder/stem-2, -3 ... so that no file stem+suffix already exists now. Not a reservation:
    another process may take the same name before it is written; use OutputSet / write_new / new_folder."""
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


# --- crash-safe folders and output names ----------------------------------------------------------------------------
# Every temporary we make carries the creating process id in its name (`.NAME.tmp-PID-RAND`, `.NAME.old-PID-RAND`)
# or in a pid file (`.STEM.partial/pid`), so a later run can tell a crashed writer's leftovers (the process is gone)
# from a writer that is still working, and clean only the former.
RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2  # renameat2(2) flags (Linux)
_CLAIM_RE = re.compile(r"^\.(?P<name>.+)\.claim-(?P<pid>\d+)-[^/]+$")
_STALE_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[^/]+$")


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(src, dst, flags): True when done, False when this system cannot (not Linux, old kernel, or a
    filesystem without the flag); other failures (e.g. dst exists with RENAME_NOREPLACE) raise OSError."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    AT_FDCWD = -100
    if fn(AT_FDCWD, os.fsencode(src), AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


def temp_sibling(dest: str | Path, kind: str = "tmp") -> Path:
    """A new empty folder `.NAME.KIND-PID-RAND` beside `dest` (mode 0o755), for a version being written."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.{kind}-{os.getpid()}-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a model or corpus folder is shared like any other
    return tmp


def replace_folder(new: Path, dest: Path) -> None:
    """Put the complete folder `new` at `dest` in one step, so `dest` is always the old or the new version.

    Linux: renameat2 RENAME_EXCHANGE swaps the two folders atomically (the old one, now at `new`'s name, is then
    deleted), or RENAME_NOREPLACE when `dest` does not exist. Elsewhere: `dest` -> `.NAME.old-PID-*`, `new` ->
    `dest`; a crash between the two renames is rolled back by `recover_folder` on the next run.
    """
    new, dest = Path(new), Path(dest)
    if os.path.lexists(dest):
        if _renameat2(new, dest, RENAME_EXCHANGE):
            shutil.rmtree(new, ignore_errors=True)
            return
        old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-{os.getpid()}-", dir=dest.parent))
        os.rename(dest, old)  # onto the empty folder just made (rename replaces an empty directory)
        os.rename(new, dest)
        shutil.rmtree(old, ignore_errors=True)
        return
    if not _renameat2(new, dest, RENAME_NOREPLACE):
        os.rename(new, dest)


def rename_new(src: str | Path, dest: str | Path) -> None:
    """Rename `src` to `dest` only if nothing is at `dest` (FileExistsError otherwise), atomically where the
    system can (renameat2 RENAME_NOREPLACE); elsewhere a check just before the rename."""
    if not _renameat2(Path(src), Path(dest), RENAME_NOREPLACE):
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "exists", str(dest))
        os.rename(src, dest)


def recover_folder(dest: str | Path) -> None:
    """Clean what crashed writers of `dest` left beside it; if `dest` itself is missing because a crash came
    between the two renames of the non-Linux replacement, move the old version back."""
    dest = Path(dest)
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return
    for e in entries:
        m = _STALE_RE.match(e.name)
        if not m or m["name"] != dest.name or pid_alive(int(m["pid"])):
            continue
        if m["kind"] == "old" and not os.path.lexists(dest):
            try:
                os.rename(e.path, dest)
                continue
            except OSError:
                pass
        shutil.rmtree(e.path, ignore_errors=True)


def folder_destination(out: str | Path, option: str, what: str, example: str) -> tuple[Path, list[str] | None]:
    """The first checks of a folder we are about to (re)write, before any work: `out` is not empty and not a file;
    crash leftovers beside it are cleaned (recover_folder). Returns (path, its entries, or None when it does not
    exist yet) for the caller's own rule on what it may replace."""
    from app.errors import OptionError

    if not str(out).strip():
        raise OptionError(f"{option} is empty; give the {what} to write, e.g. {option} {example}")
    p = Path(out)
    recover_folder(p)
    if not os.path.lexists(p):
        return p, None
    if not p.is_dir():
        raise OptionError(f"{option} {str(p)!r} is a file, not a {what}; choose a new folder name")
    return p, sorted(os.listdir(p))


class OutputSet:
    """Files that share a stem (e.g. melody `STAMP_1` .mid/.wav/.png), reserved atomically and published together.

    `reserve` makes a private folder holding a pid file and renames it to `FOLDER/.STEM.partial` in one step
    (renameat2 RENAME_NOREPLACE, or a rename that fails on the existing non-empty folder: two processes cannot
    both get it), and takes the stem only if none of its files exist yet; otherwise it tries STEM-2, STEM-3 ... Files are
    written into that folder (`temp(suffix)`) and `publish()` renames each to FOLDER/STEM+suffix, then removes the
    folder. A writer that died leaves the `.partial` folder: `clean_partial` (run by every `reserve`) deletes it
    and, if the writer died in the middle of publishing, the files it had already published (a melody's
    .mid/.wav/.png appear together or not at all).
    """

    def __init__(self, folder: Path, stem: str, suffixes: tuple[str, ...], work: Path):
        self.folder, self.stem, self.suffixes, self.work = folder, stem, suffixes, work

    @classmethod
    def reserve(cls, folder: str | Path, stem: str, suffixes: tuple[str, ...]) -> "OutputSet":
        folder = Path(folder)
        clean_partial(folder)
        try:
            claim = Path(tempfile.mkdtemp(prefix=f".{stem}.claim-{os.getpid()}-", dir=folder))
            (claim / "pid").write_text(json.dumps({"pid": os.getpid(), "suffixes": list(suffixes)}))
        except OSError as exc:
            raise OutputError(f"cannot write in {str(folder)!r}: {exc.strerror}") from None
        k = 1
        while True:
            name = stem if k == 1 else f"{stem}-{k}"
            work = folder / f".{name}.partial"
            if any(os.path.lexists(folder / (name + s)) for s in suffixes):
                k += 1
                continue
            try:  # the claim (with its pid file) becomes .NAME.partial in one step, or not at all
                if not _renameat2(claim, work, RENAME_NOREPLACE):
                    os.rename(claim, work)  # fails on an existing .partial: it is never empty
            except OSError as exc:
                if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
                    k += 1
                    continue
                shutil.rmtree(claim, ignore_errors=True)
                raise OutputError(f"cannot write in {str(folder)!r}: {exc.strerror}") from None
            if any(os.path.lexists(folder / (name + s)) for s in suffixes):  # published just before we claimed
                shutil.rmtree(work, ignore_errors=True)
                claim = Path(tempfile.mkdtemp(prefix=f".{stem}.claim-{os.getpid()}-", dir=folder))
                (claim / "pid").write_text(json.dumps({"pid": os.getpid(), "suffixes": list(suffixes)}))
                k += 1
                continue
            return cls(folder, name, tuple(suffixes), work)

    def path(self, suffix: str) -> Path:
        """Where the file will be once published."""
        return self.folder / (self.stem + suffix)

    def temp(self, suffix: str) -> Path:
        """Where to write it now."""
        return self.work / (self.stem + suffix)

    def publish(self) -> None:
        try:
            for s in self.suffixes:
                if os.path.exists(self.temp(s)):
                    os.chmod(self.temp(s), file_mode())
                    os.rename(self.temp(s), self.path(s))
        except OSError as exc:
            raise OutputError(f"cannot write {str(self.path(s))!r}: {exc.strerror}") from None
        _remove_work(self.work)

    def discard(self) -> None:
        _remove_work(self.work)


def _remove_work(work: Path) -> None:
    """Remove a .partial folder with its pid file last, so a crash in the middle leaves it claimed or empty."""
    try:
        for e in os.scandir(work):
            if e.name != "pid":
                shutil.rmtree(e.path) if e.is_dir(follow_symlinks=False) else os.unlink(e.path)
        os.unlink(work / "pid")
        os.rmdir(work)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


def clean_partial(folder: str | Path) -> int:
    """Remove the `.STEM.partial` (and `.STEM.claim-PID-*`) folders of writers that died (see OutputSet); a
    writer that died while publishing also loses the files it had published. Returns how many were removed."""
    removed = 0
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(".")]
    except OSError:
        return 0
    for e in entries:
        claim = _CLAIM_RE.match(e.name)
        if claim:
            if not pid_alive(int(claim["pid"])):
                shutil.rmtree(e.path, ignore_errors=True)
                removed += 1
            continue
        if not e.name.endswith(".partial"):
            continue
        work = Path(e.path)
        try:
            info = json.loads((work / "pid").read_text())
            pid, suffixes = int(info["pid"]), [str(s) for s in info["suffixes"]]
        except (OSError, ValueError, KeyError, TypeError):
            try:  # our .partial folders have their pid file from the start until they are empty
                os.rmdir(work)
                removed += 1
            except OSError:
                pass
            continue
        if pid_alive(pid):
            continue
        stem = e.name[1:-len(".partial")]
        unpublished = [n for n in os.listdir(work) if n != "pid"] if work.is_dir() else []
        if unpublished:  # it died before or while publishing: take back what it had published
            for s in suffixes:
                final = Path(folder) / (stem + s)
                if not (work / (stem + s)).exists() and final.is_file():
                    try:
                        final.unlink()
                    except OSError:
                        pass
        _remove_work(work)
        removed += 1
    return removed


def write_new(folder: str | Path, stem: str, suffix: str, data: str | bytes) -> Path:
    """Write `data` as a new file FOLDER/STEM[-k]SUFFIX (never an existing name, even across processes)."""
    out = OutputSet.reserve(folder, stem, (suffix,))
    try:
        with open(out.temp(suffix), "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        out.publish()
    except OSError as exc:
        out.discard()
        raise OutputError(f"cannot write {str(out.path(suffix))!r}: {exc.strerror}") from None
    return out.path(suffix)


def new_folder(base: str | Path, stem: str) -> Path:
    """Create and return a new folder BASE/STEM[-k] (mkdir is atomic: never one another process also got)."""
    base = ensure_dir(base)
    k = 1
    while True:
        p = base / (stem if k == 1 else f"{stem}-{k}")
        try:
            os.mkdir(p)
            return p
        except FileExistsError:
            k += 1
        except OSError as exc:
            raise OutputError(f"cannot create {str(p)!r}: {exc.strerror}") from None

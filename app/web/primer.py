"""Primer files for the web page (MIDI, ABC, MusicXML, kern), read outside the server process and within bounds.

`clean_primer` first scans a MIDI upload's events (app.web.uploads.midi_extent: linear in its bytes, builds
nothing) and refuses a file longer than the model can take or with too many notes; a score upload (.abc, .musicxml,
.krn; or ABC text pasted on the page, `write_abc_primer`) is checked for size only, since its parsing is bounded in
the child (PRIMER_LIMITS: notes, length, music21 CPU seconds). It then reads the file for real
in a child process (`python -m app.web.primer MODEL IN OUT`) that lowers its own priority (nice 10), limits its
memory (RLIMIT_AS, MAX_MEMORY_BYTES) and CPU time, dies with the server (PR_SET_PDEATHSIG) and is killed after
MAX_SECONDS; at most MAX_CHILDREN run at once. The child writes the primer's melody, on the model's grid, as a small
clean MIDI file OUT (in the primer's own time signature), which is what generation then reads. Messages never name server paths: the file is called by
the name the user gave it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from app.errors import AppError, DataError

MAX_SECONDS = 20.0
MAX_MEMORY_BYTES = 1536 << 20
MAX_CHILDREN = 2
NICE = 10
_slots = threading.BoundedSemaphore(MAX_CHILDREN)


def clean_primer(path: str | Path, model_dir: str | Path, dest: str | Path, display: str, limits) -> Path:
    """A primer upload -> a clean MIDI file `dest` holding its melody on the model's grid (see module docstring).
    Raises DataError (with `display` as the file's name) when the file is refused or cannot be read in bounds."""
    from app.music.generate import MelodyGenerator
    from app.music.sampler import MAX_STEPS
    from app.web.uploads import check_midi_file, midi_extent

    suffix = Path(path).suffix.lower()
    if suffix not in SCORE_SUFFIXES + (".mid", ".midi"):
        raise DataError(f"{display!r} is not a primer file this page reads; upload a MIDI (.mid), ABC (.abc), "
                        f"MusicXML (.musicxml, .xml, .mxl) or kern (.krn) file, or paste an ABC tune")
    if suffix in SCORE_SUFFIXES:
        check_score_file(path, display, limits)  # parsed only in the child, within PRIMER_LIMITS and its CPU limit
    else:
        check_midi_file(path, display, limits=limits)
        spq = MelodyGenerator.load(model_dir).steps_per_quarter
        max_quarters = min(limits.max_piece_quarters, MAX_STEPS / spq)
        midi_extent(path, display, max_quarters=max_quarters, max_notes=limits.max_notes)
    if not _slots.acquire(timeout=MAX_SECONDS):
        raise DataError("the server is busy reading other primer files; try again in a moment")
    try:
        root = Path(__file__).resolve().parents[2]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(
            os.pathsep), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        try:
            proc = subprocess.run([sys.executable, "-m", "app.web.primer", str(model_dir), str(path), str(dest)],
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=MAX_SECONDS, env=env,
                                  cwd=str(root))
        except subprocess.TimeoutExpired:
            raise DataError(f"{display!r} took more than {MAX_SECONDS:.0f} s to read; it is too long or too dense "
                            f"for a primer") from None
    finally:
        _slots.release()
    try:
        answer = json.loads(proc.stdout.decode("utf-8", "replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        answer = {}
    if "error" in answer:
        raise DataError(str(answer["error"]).replace(str(path), display))
    if proc.returncode != 0 or not Path(dest).is_file():
        why = "needs more memory than a primer may use" if b"MemoryError" in proc.stderr else "could not be read"
        raise DataError(f"{display!r} {why}; upload a shorter MIDI file with one melody")
    return Path(dest)


SCORE_SUFFIXES = (".abc", ".musicxml", ".xml", ".mxl", ".krn")


def check_score_file(path: str | Path, display: str, limits) -> Path:
    """An uploaded score primer (.abc, .musicxml, .xml, .mxl, .krn): size within the upload limit and the primer
    limit, text where text is expected. Its music is parsed only in the bounded child."""
    from app.music.limits import PRIMER_LIMITS

    p = Path(path)
    size = p.stat().st_size
    cap = min(limits.max_file_bytes, PRIMER_LIMITS.max_score_bytes)
    if p.suffix.lower() == ".abc":
        cap = min(cap, PRIMER_LIMITS.max_tune_chars * PRIMER_LIMITS.max_tunes_per_file)
    if size > cap:
        raise DataError(f"{display!r} is {size:,} bytes; a score primer may have at most {cap:,}")
    if size == 0:
        raise DataError(f"{display!r} is empty; upload an ABC tune, a MusicXML score or a MIDI file")
    return p


def write_abc_primer(text: str, dest: str | Path) -> Path:
    """Pasted ABC text -> a .abc file `dest` to read as a primer; refuses text longer than one ABC tune may be
    (PRIMER_LIMITS.max_tune_chars) or with no notes line. Adds an X: line when the text has none."""
    from app.music.limits import PRIMER_LIMITS

    text = str(text or "").replace("\r\n", "\n").strip()
    if len(text) > PRIMER_LIMITS.max_tune_chars:
        raise DataError(f"the pasted ABC primer has {len(text):,} characters; one tune may have at most "
                        f"{PRIMER_LIMITS.max_tune_chars:,}")
    if not any(line.strip() and not line.lstrip().startswith("%") and not (len(line) > 1 and line[1] == ":")
               for line in text.splitlines()):
        raise DataError("the pasted ABC primer has no line of notes; paste a tune such as\n"
                        "X:1\nM:6/8\nK:G\nGAB c2e|dBG A2D|")
    if not text.startswith("X:"):
        text = "X:1\n" + text
    Path(dest).write_text(text + "\n", encoding="utf-8")
    return Path(dest)


def _bound_self() -> None:
    """Limits the child puts on itself before reading anything."""
    import resource

    os.nice(NICE)
    resource.setrlimit(resource.RLIMIT_AS, (MAX_MEMORY_BYTES, MAX_MEMORY_BYTES))
    cpu = int(MAX_SECONDS) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m app.web.primer MODEL_DIR PRIMER.mid OUT.mid", file=sys.stderr)
        return 2
    model_dir, primer, out = argv
    parent = os.getppid()
    _bound_self()
    if os.getppid() != parent:  # the server went away before the death signal was armed
        return 3
    try:
        from app.music.generate import MelodyGenerator
        from app.music.midi_io import write_midi

        gen = MelodyGenerator.load(model_dir)
        ids, ts = gen.read_primer(file=primer)  # any primer file: .mid, .abc, .musicxml, .krn (app.music.primer_file)
        write_midi(gen.codec.decode(ids, steps_per_quarter=gen.steps_per_quarter, qpm=120.0,
                                    time_signature=ts or gen.time_signature), out)
        print(json.dumps({"ok": True, "steps": int(len(ids))}))
        return 0
    except AppError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    except MemoryError:
        print(json.dumps({"error": "the primer needs more memory than a primer may use; upload a shorter file"}))
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

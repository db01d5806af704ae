"""Retraining from the web page: one training job at a time, later requests wait in a short queue.

`TrainingQueue.submit(...)` checks everything it can at once (model name, base model, epochs, the uploaded files,
copied into the job's own upload folder) and then queues the job; one worker thread runs the jobs in order, so a
second request is told its place in the queue and starts by itself when the first ends. A full queue refuses
new requests with a message instead of dropping them silently.

Each job runs in a child process (`python -m app.web.jobs SPEC.json`) so TensorFlow never loads into the web
server, a crash cannot take the page down, and all memory is returned when it ends. The child reports by JSON
lines on stdout (prefixed by EVENT_PREFIX):
    {"event": "stage", "text": ...}                      what it is doing now
    {"event": "corpus", "summary": ..., "kept": n, "skipped": [[source, reason, detail], ...]}
    {"event": "epoch", "epoch": k, "epochs": n, "loss": x, "val_loss": y}
    {"event": "done", "model": path, "epochs_done": k, "best_epoch": b, "validation": {...}}
    {"event": "error", "message": ...}                   a user-facing message (never a traceback)
The corpus is built with the library (app.music.corpus.build_corpus) from the upload folder and the model is trained
with app.music.train.train_music (fine-tuning with `from_model` when a base model is chosen) into a hidden staging
folder <models>/.training-<job id>; only a finished model is renamed to <models>/<name>, so the page never lists a
half-trained model. Its log (stderr) is <work>/<job id>/train.log.
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from app.errors import AppError, DataError, OptionError
from app.core.outputs import new_folder, rename_new
from app.web.uploads import UploadLimits, collect_uploads, midi_extent, sanitize_model_name

EVENT_PREFIX = "@@job "
MAX_EPOCHS = 100
NEW_MODEL_UNITS = {"small (64 units)": 64, "medium (128 units)": 128, "large (256 units)": 256}
DEFAULT_UNITS = 128


@dataclass
class Job:
    id: str
    name: str
    base: str | None  # model folder fine-tuned from, None = new model
    epochs: int
    units: int
    upload_dir: Path
    files: list[str]
    upload_skipped: list[tuple[str, str]]
    state: str = "queued"  # queued, running, done, failed
    stage: str = "waiting"
    history: list[dict] = field(default_factory=list)  # {"epoch", "loss", "val_loss"}
    corpus: dict | None = None
    result: dict | None = None
    message: str = ""
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    mode: str = "melody"  # corpus mode of a new model: "melody" or "poly" (a fine-tuned one keeps its base's)

    def apply(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "stage":
            self.stage = str(event.get("text", ""))
        elif kind == "corpus":
            self.corpus = {k: event.get(k) for k in ("summary", "kept", "skipped", "segments")}
        elif kind == "epoch":
            self.history.append({k: event.get(k) for k in ("epoch", "loss", "val_loss")})
            self.stage = f"training: epoch {event.get('epoch')} of {event.get('epochs', self.epochs)} finished"
        elif kind == "done":
            self.result = {k: v for k, v in event.items() if k != "event"}
            self.stage = "model saved; finishing"
        elif kind == "error":
            self.message = str(event.get("message", "training failed"))

    def snapshot(self) -> dict:
        return {"id": self.id, "name": self.name, "base": self.base, "epochs": self.epochs, "units": self.units,
                "mode": self.mode, "files": list(self.files), "upload_skipped": list(self.upload_skipped), "state": self.state,
                "stage": self.stage, "history": [dict(h) for h in self.history],
                "corpus": dict(self.corpus) if self.corpus else None,
                "result": dict(self.result) if self.result else None, "message": self.message,
                "elapsed": round((self.finished or time.time()) - (self.started or time.time()), 1)
                if self.started else 0.0}


# runner(job, work_dir, models_dir, on_event) -> None; raises on failure (AppError messages reach the page)
Runner = Callable[[Job, Path, Path, Callable[[dict], None]], None]


class TrainingQueue:
    """One job at a time; at most `max_waiting` more wait their turn (see the module docstring)."""

    def __init__(self, models_dir: str | Path, work_dir: str | Path, *, limits: UploadLimits = UploadLimits(),
                 max_waiting: int = 3, runner: Runner | None = None, keep_uploads: bool = False):
        self.models_dir = Path(models_dir)
        self.work_dir = Path(work_dir)
        self.limits = limits
        self.max_waiting = max_waiting
        self.runner = runner or run_in_subprocess
        self.keep_uploads = keep_uploads
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._waiting: collections.deque[Job] = collections.deque()
        self._jobs: dict[str, Job] = {}
        self._running: Job | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # --- requests ----------------------------------------------------------------------------------------------
    def submit(self, files: Sequence[str | Path], name: str, base: str | Path | None = None, epochs: int = 5,
               units: int = DEFAULT_UNITS, display_names: Sequence[str] | None = None, mode: str = "melody") -> Job:
        """Check the request, copy the uploads, queue the job. Raises AppError with a message for the page."""
        safe = sanitize_model_name(name)
        if isinstance(epochs, float) and epochs.is_integer():
            epochs = int(epochs)
        if not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
            raise OptionError(f"epochs must be a whole number 1..{MAX_EPOCHS}, got {epochs!r}")
        if int(units) not in NEW_MODEL_UNITS.values():
            raise OptionError(f"model size must be one of {sorted(NEW_MODEL_UNITS.values())} units, got {units!r}")
        if mode not in ("melody", "poly"):
            raise OptionError(f"mode must be melody or poly, got {mode!r}")
        if base is not None:
            from app.core.folder import load_model_folder

            parent = load_model_folder(base, domain="music")  # ModelFolderError names the problem
            mode = parent.config.get("codec", {}).get("mode", "melody")  # fine-tuning keeps the base's mode
        with self._lock:
            self._check_name_free(safe)
            if self._closed:
                raise DataError("the server is shutting down; try again later")
            if len(self._waiting) >= self.max_waiting:
                raise DataError(f"the training queue is full ({self.max_waiting} jobs waiting behind the running "
                                f"one); try again when one has finished")
        job_dir = new_folder(self.work_dir, f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}")  # atomic
        job_id = job_dir.name
        upload_dir = job_dir / "uploads"
        try:
            got = collect_uploads(files, upload_dir, self.limits, names=display_names)
            check_job_size(got, self.limits)
        except AppError:
            shutil.rmtree(self.work_dir / job_id, ignore_errors=True)
            raise
        job = Job(id=job_id, name=safe, base=str(base) if base is not None else None, epochs=epochs,
                  units=int(units), upload_dir=upload_dir, files=[p.name for p in got.files],
                  upload_skipped=got.skipped, mode=mode)
        with self._lock:
            try:
                self._check_name_free(safe)  # re-check: another request may have taken it meanwhile
            except AppError:
                shutil.rmtree(self.work_dir / job_id, ignore_errors=True)
                raise
            self._jobs[job_id] = job
            self._waiting.append(job)
            self._ensure_worker()
            self._wake.notify_all()
        return job

    def _check_name_free(self, safe: str) -> None:
        if (self.models_dir / safe).exists():
            raise OptionError(f"a model named {safe!r} already exists in {self.models_dir}; choose another name")
        pending = [j for j in [self._running, *self._waiting] if j is not None and j.name == safe]
        if pending:
            raise OptionError(f"a training job for {safe!r} is already {pending[0].state}; choose another name")

    def get(self, job_id: str | None) -> dict | None:
        with self._lock:
            job = self._jobs.get(job_id or "")
            if job is None:
                return None
            snap = job.snapshot()
            snap["position"] = self._position(job)
            snap["running_name"] = self._running.name if self._running else None
            return snap

    def _position(self, job: Job) -> int:
        """How many jobs run before this one (the running one included); 0 when it runs or has finished."""
        if job.state != "queued" or job not in self._waiting:
            return 0
        return list(self._waiting).index(job) + (1 if self._running is not None else 0)

    def busy(self) -> bool:
        with self._lock:
            return self._running is not None or bool(self._waiting)

    def wait_idle(self, timeout: float) -> bool:
        end = time.time() + timeout
        while time.time() < end:
            if not self.busy():
                return True
            time.sleep(0.05)
        return not self.busy()

    def close(self) -> None:
        """Refuse new jobs, drop waiting ones and stop the running child process (server shutdown)."""
        with self._lock:
            self._closed = True
            for job in self._waiting:
                job.state, job.message = "failed", "the server stopped before this job started"
            self._waiting.clear()
            self._wake.notify_all()
        proc = _CHILDREN.copy()
        for p in proc:
            _stop(p)

    # --- worker ------------------------------------------------------------------------------------------------
    def _ensure_worker(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="training-queue", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._closed:
                    if not self._wake.wait(timeout=30):
                        if not self._waiting:
                            self._thread = None  # idle: let the thread end; submit starts a new one
                            return
                if self._closed:
                    return
                job = self._waiting.popleft()
                self._running = job
                job.state, job.started, job.stage = "running", time.time(), "starting"

            def on_event(event: dict, job=job) -> None:
                with self._lock:
                    job.apply(event)

            try:
                self.runner(job, self.work_dir / job.id, self.models_dir, on_event)
                state = "done" if job.result is not None else "failed"
                if state == "failed" and not job.message:
                    job.message = "training ended without a model"
            except AppError as exc:
                state = "failed"
                job.message = str(exc)
            except Exception as exc:  # never let one job stop the queue; the page gets one line
                state = "failed"
                job.message = f"training failed ({type(exc).__name__}: {exc})"
                traceback.print_exc()
            with self._lock:
                job.state, job.finished, self._running = state, time.time(), None
                if state == "failed":
                    job.stage = "failed"
            if not self.keep_uploads:
                shutil.rmtree(job.upload_dir, ignore_errors=True)


def check_job_size(got, limits: UploadLimits) -> None:
    """Before a job may queue for the training slot: scan each MIDI file's events (app.web.uploads.midi_extent,
    nothing built) and leave out files over the per-file limits; refuse the job when nothing is left or the files
    together are longer than limits.max_job_quarters. Updates `got` (an UploadResult) in place."""
    total, kept = 0.0, []
    for path in got.files:
        try:
            extent = midi_extent(path, path.name, max_quarters=limits.max_piece_quarters, max_notes=limits.max_notes)
        except DataError as exc:
            got.skipped.append((path.name, str(exc).replace(repr(path.name), "").strip()))
            path.unlink(missing_ok=True)
            continue
        total += extent.quarters
        kept.append(path)
    got.files = kept
    if not kept:
        raise DataError("no MIDI file of the upload can be used: " + "; ".join(f"{n}: {r}" for n, r in
                                                                            got.skipped[:5]))
    if total > limits.max_job_quarters:
        raise DataError(f"the MIDI files are {total:,.0f} quarter notes long in all; a training job may use at most "
                        f"{limits.max_job_quarters:,} (upload fewer or shorter files)")


# --- the child process ---------------------------------------------------------------------------------------------
_CHILDREN: set[subprocess.Popen] = set()


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _stop_all() -> None:
    for p in list(_CHILDREN):
        _stop(p)


import atexit  # noqa: E402

atexit.register(_stop_all)


def run_in_subprocess(job: Job, job_dir: Path, models_dir: Path, on_event: Callable[[dict], None]) -> None:
    """Run `python -m app.web.jobs SPEC` and feed its events to on_event. Raises AppError when it fails."""
    job_dir.mkdir(parents=True, exist_ok=True)
    spec = {"id": job.id, "name": job.name, "base": job.base, "epochs": job.epochs, "units": job.units,
            "mode": job.mode, "upload_dir": str(job.upload_dir), "job_dir": str(job_dir), "models_dir": str(models_dir)}
    spec_path = job_dir / "spec.json"
    spec_path.write_text(json.dumps(spec, indent=1), encoding="utf-8")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep), "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), "PYTHONUNBUFFERED": "1"}
    with open(job_dir / "train.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "app.web.jobs", str(spec_path)], stdout=subprocess.PIPE,
                                stderr=log, stdin=subprocess.DEVNULL, env=env, cwd=str(root))
        _CHILDREN.add(proc)
        error = None
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith(EVENT_PREFIX):
                    continue
                try:
                    event = json.loads(line[len(EVENT_PREFIX):])
                except json.JSONDecodeError:
                    continue
                if event.get("event") == "error":
                    error = str(event.get("message"))
                on_event(event)
            rc = proc.wait()
        finally:
            _CHILDREN.discard(proc)
            _stop(proc)
    if error:
        raise DataError(error)
    if rc != 0:
        raise DataError(f"training stopped unexpectedly (exit status {rc}); the server's job log has the details")


def emit(event: str, **fields) -> None:
    print(EVENT_PREFIX + json.dumps({"event": event, **fields}, default=float), flush=True)


def _watch_parent() -> None:
    """Exit when the web server that started us has gone (so no training outlives it)."""
    parent = os.getppid()

    def loop():
        while True:
            time.sleep(2)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=loop, daemon=True).start()


def train_job(spec: dict) -> dict:
    """The work of one job (in the child process): corpus from the uploads, then training; emits events."""
    import dataclasses

    from app.core.folder import load_model_folder
    from app.music.corpus import build_corpus, format_summary
    from app.music.melody import ExtractConfig
    from app.music.train import DEFAULT_MODEL, DEFAULT_TRAIN, DEFAULT_TX, load_music_data, train_music

    job_dir, models_dir = Path(spec["job_dir"]), Path(spec["models_dir"])
    final = models_dir / spec["name"]
    if final.exists():
        raise OptionError(f"a model named {spec['name']!r} already exists; choose another name")
    from app.music.corpus_cli import POLY_RANGE

    mode = spec.get("mode") or "melody"
    config = ExtractConfig(mode=mode, min_pitch=POLY_RANGE[mode][0], max_pitch=POLY_RANGE[mode][1])
    if spec.get("base"):
        folder = load_model_folder(spec["base"], domain="music")
        codec = folder.config.get("codec", {})
        mode = codec.get("mode", "melody")
        config = ExtractConfig(steps_per_quarter=int(codec.get("steps_per_quarter", 4)),
                               min_pitch=int(codec.get("min_pitch", POLY_RANGE[mode][0])),
                               max_pitch=int(codec.get("max_pitch", POLY_RANGE[mode][1])), mode=mode)
    emit("stage", text="reading the MIDI files")
    built = build_corpus([spec["upload_dir"]], job_dir / "corpus", config, val_fraction=0.1, seed=0, jobs=1,
                         progress=False, use_cache=False)
    report = built.report
    skipped = [[s.get("source"), s.get("reason"), s.get("detail")] for s in report["skipped"]["items"]]
    summary = format_summary(built).replace(str(job_dir / "corpus"), "of your files")
    summary = summary.replace(spec["upload_dir"], "your uploaded files")  # no server paths on the page
    emit("corpus", summary=summary, kept=report["pieces"]["kept"],
         segments=report["pieces"]["segments"], skipped=skipped)
    data = load_music_data(job_dir / "corpus")
    if not data.val:
        raise DataError(f"only {report['pieces']['kept']} usable piece(s) kept; training needs at least 2 (one is "
                        f"held out to measure validation loss); upload more MIDI files")
    epochs = int(spec["epochs"])
    model_cfg = dataclasses.replace(DEFAULT_MODEL, units=int(spec.get("units") or DEFAULT_UNITS))
    train_cfg = dataclasses.replace(DEFAULT_TRAIN, epochs=epochs)
    emit("stage", text=("fine-tuning " + Path(spec["base"]).name) if spec.get("base") else "training a new model")

    from app.core.train import EpochHook

    def on_epoch(epoch: int, logs: dict) -> None:
        emit("epoch", epoch=epoch + 1, epochs=epochs, loss=float(logs.get("loss", float("nan"))),
             val_loss=float(logs.get("val_loss", float("nan"))))

    staging = models_dir / f".training-{spec['id']}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        card = train_music(data, staging, model_cfg, train_cfg, tx=DEFAULT_TX, from_model=spec.get("base"),
                           progress=False, baselines=False, hooks=[EpochHook(on_epoch)])
        _rename_card(staging, spec["name"])
        try:
            rename_new(staging, final)  # never over a model that appeared meanwhile
        except FileExistsError:
            raise OptionError(f"a model named {spec['name']!r} appeared while training; the new model was not "
                              f"saved — choose another name") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        from app.core.runstate import run_dir_for

        shutil.rmtree(run_dir_for(staging), ignore_errors=True)  # a failed job's kill -9 backup is not resumable here
    result = {"model": str(final), "epochs_done": card.get("epochs_done"), "best_epoch": card.get("best_epoch"),
              "validation": card.get("metrics", {}).get("validation", {}), "seconds": card.get("train_seconds")}
    emit("done", **result)
    return result


def _rename_card(folder: Path, name: str) -> None:
    """The card names the model after its folder; the staging folder's name is replaced by the final one."""
    path = folder / "card.json"
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return
    card["name"] = name
    card["trained_on_web"] = True
    from app.core.outputs import atomic_write

    atomic_write(path, json.dumps(card, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m app.web.jobs SPEC.json", file=sys.stderr)
        return 2
    _watch_parent()
    try:
        spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
        train_job(spec)
        return 0
    except AppError as exc:
        emit("error", message=str(exc))
        return 2
    except Exception as exc:
        traceback.print_exc()
        emit("error", message=f"training failed ({type(exc).__name__}: {exc}); the server log has the details")
        return 1


if __name__ == "__main__":
    sys.exit(main())

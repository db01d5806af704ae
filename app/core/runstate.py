"""Kill -9 safe training runs: Keras `BackupAndRestore` plus the history and progress of the run, in `<out>.run/`.

Layout of the run folder (written by the chief only; other workers use a private temporary folder):
    backup/            keras.callbacks.BackupAndRestore (model weights, optimizer state incl. Adam's iteration
                       count, and the epoch), saved after every epoch; double_checkpoint keeps the previous state
                       in case the process dies while writing;
    history.json       per-epoch logs of the finished epochs (so the card's history survives a restart);
    run.json           the run's fingerprint (model, training options, data hash): a backup is only restored by
                       the same command on the same data;
    progress.json      {"epoch": 1-based epoch now running, "batch": batches done in it} (for watchers and tests);
    best.weights.npz   the weights of the best finished epoch so far (early stopping's restore_best_weights), so
                       that early stopping after a restart counts patience from the real best epoch and ends on
                       its weights.
Running the same command again after a crash continues from the last finished epoch. The folder is removed only
after the final model folder has been written, so there is always either a finished model or a resumable run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from app.errors import OptionError


def run_dir_for(out: str | Path) -> Path:
    """The run folder of model folder `out`: a sibling named `<out>.run`."""
    out = Path(out)
    return out.with_name(out.name + ".run")


def _atomic_json(path: Path, data: dict) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f)
    os.replace(tmp, path)


class _Progress(keras.callbacks.Callback):
    """Writes progress.json (epoch 1-based, batch) at each epoch start and at most every `every` seconds."""

    def __init__(self, path: Path, every: float = 0.2):
        super().__init__()
        self.path, self.every, self.epoch, self.last = path, every, 0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        _atomic_json(self.path, {"epoch": self.epoch, "batch": 0})
        self.last = time.monotonic()

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self.last >= self.every:
            _atomic_json(self.path, {"epoch": self.epoch, "batch": batch + 1})
            self.last = now


class _History(keras.callbacks.Callback):
    """Appends each finished epoch's logs to history.json (after BackupAndRestore saved that epoch)."""

    def __init__(self, state: "RunState"):
        super().__init__()
        self.state = state

    def on_epoch_end(self, epoch, logs=None):
        for k, v in (logs or {}).items():
            self.state.history.setdefault(k, []).append(float(v))
        _atomic_json(self.state.dir / "history.json", self.state.history)


class _ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """keras EarlyStopping (val_loss, restore_best_weights) whose state survives a restart: the best value, its
    epoch and the patience count are rebuilt from the restored history, the best weights from best.weights.npz
    (written by the chief whenever an epoch improves; used only if it belongs to that best epoch)."""

    def __init__(self, state: "RunState", patience: int):
        super().__init__(monitor="val_loss", patience=patience, restore_best_weights=True)
        self.state = state
        self.path = state.dir / "best.weights.npz"

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        vals = self.state.history.get(self.monitor) or []
        if not vals:
            return
        k = int(np.argmin(vals))
        self.best, self.best_epoch, self.wait = float(vals[k]), k, len(vals) - 1 - k
        if self.path.is_file():
            with np.load(self.path) as z:
                if int(z["epoch"]) == k:
                    self.best_weights = [z[f"w{i}"] for i in range(len(z.files) - 1)]

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        if self.state.is_chief and self.best_epoch == epoch and self.best_weights is not None:
            fd, tmp = tempfile.mkstemp(prefix=".best.", suffix=".npz", dir=self.state.dir)
            with os.fdopen(fd, "wb") as f:
                np.savez(f, epoch=np.int64(epoch), **{f"w{i}": w for i, w in enumerate(self.best_weights)})
            os.replace(tmp, self.path)


class RunState:
    """The restartable state of one training run (see the module docstring)."""

    def __init__(self, out: str | Path, fingerprint: dict, *, is_chief: bool = True):
        self.is_chief = is_chief
        self.dir = run_dir_for(out) if is_chief else Path(tempfile.mkdtemp(prefix="app-worker-run-"))
        self.fingerprint = json.loads(json.dumps(fingerprint))  # plain JSON types, comparable after a reload
        self.history: dict[str, list[float]] = {}
        self.restored_epoch = 0
        meta = self.dir / "backup" / "training_metadata.json"
        if (self.dir / "run.json").is_file():
            saved = json.loads((self.dir / "run.json").read_text(encoding="utf-8"))
            if saved != self.fingerprint:
                changed = sorted(k for k in set(saved) | set(self.fingerprint)
                                 if saved.get(k) != self.fingerprint.get(k))
                raise OptionError(
                    f"{self.dir} holds an unfinished run with different {', '.join(changed)}; rerun the same "
                    f"command to continue it, or delete {self.dir} to start over")
            if meta.is_file() and (self.dir / "history.json").is_file():
                self.restored_epoch = int(json.loads(meta.read_text())["epoch"])
                hist = json.loads((self.dir / "history.json").read_text(encoding="utf-8"))
                self.history = {k: list(v)[:self.restored_epoch] for k, v in hist.items()}
        self.dir.mkdir(parents=True, exist_ok=True)
        _atomic_json(self.dir / "run.json", self.fingerprint)

    def early_stopping(self, patience: int) -> keras.callbacks.Callback:
        """Early stopping on val_loss (best weights restored at the end) that continues across restarts."""
        return _ResumableEarlyStopping(self, patience)

    def callbacks(self, save_freq: str | int = "epoch") -> list[keras.callbacks.Callback]:
        """History writer, BackupAndRestore (restores on train begin, saves every epoch), progress writer."""
        return [_History(self),
                keras.callbacks.BackupAndRestore(str(self.dir / "backup"), save_freq=save_freq,
                                                 double_checkpoint=True, delete_checkpoint=False),
                _Progress(self.dir / "progress.json")]

    def finish(self) -> None:
        """The model folder is written: the run is over, remove its folder."""
        shutil.rmtree(self.dir, ignore_errors=True)

"""Kill -9 safe training: a run killed during epoch 3 continues at epoch 3 when the same command runs again, with
Adam's state restored, and ends where an uninterrupted run ends; `--resume` on a finished music model also
restores the optimizer. Slow: trains small models (the kill test in subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.core.runstate import RunState, run_dir_for
from app.errors import OptionError

ROOT = Path(__file__).resolve().parents[1]


def synthetic_names(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    parts = ["ka", "lo", "ri", "mu", "zen", "tor", "sau", "rus", "don", "pte", "ra", "ce", "to", "ps"]
    return sorted({"".join(rng.choice(parts, int(rng.integers(2, 5)))) for _ in range(n)})


def command(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "app", "names", "train", "--data", str(data), "--out", str(out), "--epochs", "5",
            "--units", "16", "--dropout", "0", "--recurrent-dropout", "0", "--batch-size", "8", "--seed", "0",
            "--distribute", "none", "--quiet", "--logdir", str(out.parent / "logs")]


def optimizer_iterations(folder: Path) -> int:
    import keras

    import app.core.model  # noqa: F401  (custom layers)

    return int(keras.saving.load_model(folder / "model.keras").optimizer.iterations.numpy())


@pytest.mark.slow
def test_kill_9_during_epoch_3_then_the_same_command_resumes_at_epoch_3(tmp_path):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(synthetic_names(4000, 0)) + "\n", encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2"}

    ref = tmp_path / "ref" / "model"
    ref.parent.mkdir()
    r = subprocess.run(command(data, ref), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]

    out = tmp_path / "run" / "model"
    out.parent.mkdir()
    progress = run_dir_for(out) / "progress.json"
    proc = subprocess.Popen(command(data, out), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    seen = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen = json.loads(progress.read_text())
        except (OSError, ValueError):
            seen = None
        if seen and seen["epoch"] == 3 and seen["batch"] > 0:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before epoch 3 could be interrupted"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert seen["epoch"] == 3 and not out.exists()  # killed mid-epoch 3; no half model folder
    backup = json.loads((run_dir_for(out) / "backup" / "training_metadata.json").read_text())
    assert backup["epoch"] == 2

    r = subprocess.run(command(data, out), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "training on CPU" in r.stderr and "distribute none, 1 replica(s)" in r.stderr  # the device is reported
    card = json.loads((out / "card.json").read_text())
    ref_card = json.loads((ref / "card.json").read_text())
    assert card["resumed_from_epoch"] == 2 and card["epochs_done"] == 5
    assert not run_dir_for(out).exists()  # removed once the model folder is complete
    # Adam continued: its iteration count covers all 5 epochs, as in the uninterrupted run (3 if it restarted)
    assert optimizer_iterations(out) == optimizer_iterations(ref) > 0
    v, v_ref = (c["metrics"]["validation"]["nll_nats_per_char"] for c in (card, ref_card))
    assert abs(v - v_ref) <= 0.02 * v_ref


def test_a_run_folder_of_other_options_is_not_restored(tmp_path):
    out = tmp_path / "model"
    RunState(out, {"train": {"epochs": 5}})
    RunState(out, {"train": {"epochs": 5}})  # same options: fine
    with pytest.raises(OptionError, match="different train"):
        RunState(out, {"train": {"epochs": 6}})
    other = RunState(out, {"train": {"epochs": 5}}, is_chief=False)
    assert not str(other.dir).startswith(str(tmp_path))  # non-chief workers keep their state elsewhere
    other.finish()
    assert not other.dir.exists()


@pytest.mark.slow
def test_resume_of_a_finished_music_model_restores_the_optimizer(tmp_path):
    from app.core.modelconfig import ModelConfig, TrainConfig
    from app.music.codec import MelodyCodec
    from app.music.train import train_music
    from tests.test_music_train import data_for

    data = data_for(MelodyCodec(60, 72))
    cfg = TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2, patience=5, seed=0, distribute="none")
    out = tmp_path / "m"
    train_music(data, out, ModelConfig(units=8), cfg, tx=16, progress=False, baselines=False)
    first = optimizer_iterations(out)
    card = train_music(data, out, ModelConfig(units=8), TrainConfig(**{**cfg.__dict__, "epochs": 3}), tx=16,
                       resume=True, progress=False, baselines=False)
    assert card["epochs_done"] == 3 and first > 0
    assert optimizer_iterations(out) == first * 3 // 2  # continued counting, not restarted


def test_early_stopping_continues_its_patience_and_best_weights_after_a_restart(tmp_path):
    """A run restored after epoch 4 whose best epoch was 2: patience counts from epoch 2, and the end restores the
    weights of epoch 2 (saved by the first process), not those of the last epoch. Plain EarlyStopping would start
    counting afresh and lose the best weights."""
    import keras

    def model_with(value: float):
        m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        m.set_weights([np.full((2, 1), value, np.float32), np.zeros(1, np.float32)])
        return m

    first = RunState(tmp_path / "m", {"x": 1})
    stop = first.early_stopping(patience=3)
    m = model_with(0.0)
    stop.set_model(m)
    stop.on_train_begin()
    for epoch, (loss, w) in enumerate([(1.0, 1.0), (0.8, 2.0), (0.9, 3.0), (0.95, 4.0)]):
        m.set_weights([np.full((2, 1), w, np.float32), np.zeros(1, np.float32)])
        stop.on_epoch_end(epoch, {"val_loss": loss})
        first.history.setdefault("val_loss", []).append(loss)
    assert (first.dir / "best.weights.npz").is_file() and not getattr(m, "stop_training", False)

    again = RunState(tmp_path / "m", {"x": 1})  # the restart: history as BackupAndRestore left it
    again.history = {"val_loss": list(first.history["val_loss"])}
    stop2 = again.early_stopping(patience=3)
    m2 = model_with(4.0)  # BackupAndRestore brings back the last epoch's weights
    stop2.set_model(m2)
    stop2.on_train_begin()
    assert (stop2.best, stop2.best_epoch, stop2.wait) == (0.8, 1, 2)
    stop2.on_epoch_end(4, {"val_loss": 0.97})
    assert m2.stop_training  # 3 epochs without improvement since epoch 2 (1-based)
    stop2.on_train_end()
    np.testing.assert_array_equal(m2.get_weights()[0], 2.0)  # the best epoch's weights

    # a best-weights file of another epoch (the process died before that epoch was backed up) is not used
    again.history = {"val_loss": [0.7, 0.9]}  # best at epoch 1 (1-based); the file holds epoch 2
    stop3 = again.early_stopping(patience=3)
    stop3.set_model(model_with(5.0))
    stop3.on_train_begin()
    assert stop3.best_epoch == 0 and stop3.best_weights is None

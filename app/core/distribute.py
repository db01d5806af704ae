"""Where training runs: one `tf.distribute` strategy chosen by name (imports TensorFlow; import lazily).

Strategies (a registry, `STRATEGIES`):
    none          the default strategy: one device (the first GPU when one is visible, else the CPU);
    mirrored      `tf.distribute.MirroredStrategy` over this machine's GPUs (synchronous all-reduce);
    multi-worker  `tf.distribute.MultiWorkerMirroredStrategy` across the machines listed in the TF_CONFIG
                  environment variable (gRPC, synchronous); every worker runs the same command;
    auto          mirrored when more than one GPU is visible, else none (the default of `--distribute`).

Batches: `--batch-size` is per replica; the global batch is batch_size x replicas. Only the chief (TF_CONFIG task
"chief", or worker 0 when the cluster has no chief; always true without TF_CONFIG) writes the model folder,
checkpoints, TensorBoard logs and the card; other workers write the same files into a private temporary folder
(as the Keras multi-worker guide advises) that is removed afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.core.modelconfig import DISTRIBUTE_CHOICES
from app.errors import OptionError


def _tf():
    import tensorflow as tf

    return tf


def visible_gpus() -> list[str]:
    """Names of the GPUs TensorFlow can use here (e.g. ["NVIDIA H100 80GB HBM3"]); [] on a CPU-only install."""
    tf = _tf()
    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
        except Exception:  # details are best-effort (not every build reports them)
            names.append(gpu.name)
    return names


def read_tf_config() -> dict:
    """TF_CONFIG as a dict, checked: {"cluster": {"worker": [...], ...}, "task": {"type", "index"}}."""
    raw = os.environ.get("TF_CONFIG", "")
    how = ('set TF_CONFIG on every machine, e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", '
           '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\' (index 1 on the second machine)')
    if not raw.strip():
        raise OptionError(f"--distribute multi-worker needs the TF_CONFIG environment variable; {how}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise OptionError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); {how}") from None
    cluster, task = (cfg.get("cluster"), cfg.get("task")) if isinstance(cfg, dict) else (None, None)
    if not isinstance(cluster, dict) or not cluster.get("worker") and not cluster.get("chief"):
        raise OptionError(f"TF_CONFIG has no cluster with workers (got {raw[:200]!r}); {how}")
    if not isinstance(task, dict) or task.get("type") not in cluster or not isinstance(task.get("index"), int) \
            or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise OptionError(f"TF_CONFIG task {task!r} is not one of its cluster's tasks "
                          f"({ {k: len(v) for k, v in cluster.items()} }); {how}")
    return cfg


def is_chief_task(cfg: dict) -> bool:
    """The chief: task "chief", or worker 0 when the cluster has no chief (TensorFlow's rule)."""
    task, cluster = cfg["task"], cfg["cluster"]
    if "chief" in cluster:
        return task["type"] == "chief"
    return task["type"] == "worker" and task["index"] == 0


@dataclass
class Placement:
    """A chosen strategy plus what the app needs from it: replica count, chief or not, devices (for the card)."""

    strategy: object  # tf.distribute.Strategy
    name: str  # one of none, mirrored, multi-worker (auto already resolved)
    replicas: int
    workers: int
    is_chief: bool
    devices: list[str]
    _scratch: list[Path] = field(default_factory=list, repr=False)

    def scope(self):
        return self.strategy.scope()

    def global_batch(self, per_replica: int) -> int:
        return per_replica * self.replicas

    def describe(self) -> str:
        role = "" if self.workers == 1 else f", {self.workers} workers ({'chief' if self.is_chief else 'worker'})"
        return f"training on {', '.join(self.devices)} (distribute {self.name}, {self.replicas} replica(s){role})"

    def card(self) -> dict:
        return {"strategy": self.name, "replicas": self.replicas, "workers": self.workers, "devices": self.devices}

    def write_path(self, path: str | Path) -> Path:
        """Where this process writes `path`: itself on the chief, a private temporary twin on other workers."""
        if self.is_chief:
            return Path(path)
        scratch = Path(tempfile.mkdtemp(prefix="app-worker-"))
        self._scratch.append(scratch)
        return scratch / Path(path).name

    def cleanup(self) -> None:
        """Remove the temporary twins of a non-chief worker."""
        while self._scratch:
            shutil.rmtree(self._scratch.pop(), ignore_errors=True)


def _devices() -> list[str]:
    gpus = visible_gpus()
    return [f"GPU {g}" for g in gpus] if gpus else [f"CPU ({os.cpu_count()} cores)"]


def _none(tf) -> Placement:
    return Placement(tf.distribute.get_strategy(), "none", 1, 1, True, _devices()[:1])


def _mirrored(tf) -> Placement:
    strategy = tf.distribute.MirroredStrategy()
    return Placement(strategy, "mirrored", strategy.num_replicas_in_sync, 1, True, _devices())


def patch_keras_scalar_logs() -> None:
    """Keras 3.15 reduces fit's scalar logs (loss, metrics) across workers with `strategy.reduce("MEAN", v,
    axis=0)`, which fails for scalars ("Invalid reduction dimension 0") under MultiWorkerMirroredStrategy. Reduce
    scalars with axis=None (the mean over replicas) and leave everything else to Keras. Idempotent."""
    from keras.src.backend.tensorflow import trainer

    original = trainer.reduce_per_replica
    if getattr(original, "_app_patched", False):
        return
    tf = _tf()

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
            from keras.src import tree

            def reduce(v):
                if isinstance(v, tf.distribute.DistributedValues) or tf.is_tensor(v):
                    return strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0)
                return v

            return tree.map_structure(reduce, values)
        return original(values, strategy, reduction)

    reduce_per_replica._app_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def _multi_worker(tf) -> Placement:
    cfg = read_tf_config()
    patch_keras_scalar_logs()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    workers = sum(len(cfg["cluster"].get(k, [])) for k in ("chief", "worker"))
    return Placement(strategy, "multi-worker", strategy.num_replicas_in_sync, workers, is_chief_task(cfg),
                     _devices())


STRATEGIES: dict[str, Callable] = {"none": _none, "mirrored": _mirrored, "multi-worker": _multi_worker}


def resolve(name: str, gpus: int | None = None) -> str:
    """"auto" -> "mirrored" when more than one GPU is visible, else "none"; other names are returned checked."""
    if name not in DISTRIBUTE_CHOICES:
        raise OptionError(f"--distribute must be one of {', '.join(DISTRIBUTE_CHOICES)}, got {name!r}")
    if name != "auto":
        return name
    return "mirrored" if (len(visible_gpus()) if gpus is None else gpus) > 1 else "none"


_CACHE: dict[str, Placement] = {}


def make_placement(name: str = "auto") -> Placement:
    """The placement for `--distribute name` (one per process and strategy: TensorFlow allows a single
    multi-worker strategy per process, created before other TensorFlow work)."""
    key = resolve(name)
    if key not in _CACHE:
        _CACHE[key] = STRATEGIES[key](_tf())
    return _CACHE[key]


def cudnn_warning(recurrent_dropout: float, placement: Placement) -> str | None:
    """A warning when a GPU trains with recurrent dropout: Keras then cannot use the fast cuDNN LSTM/GRU kernel."""
    if recurrent_dropout > 0 and any(d.startswith("GPU") for d in placement.devices):
        return (f"warning: recurrent_dropout={recurrent_dropout} turns off the cuDNN LSTM/GRU kernel on the GPU "
                f"(several times slower); pass --recurrent-dropout 0 for the fast kernel")
    return None


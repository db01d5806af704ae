"""Test helper run as a subprocess (not a test module): train a tiny names or music model with a given
`--distribute` (TF_CONFIG comes from the environment), then dump the final weights and loss history to DUMP.

usage: python tests/distributed_worker.py names|music DISTRIBUTE BATCH_SIZE DUMP.npz
The model folder is written to ./model (relative to the working directory), TensorBoard logs to ./logs.
DISTRIBUTE "mirrored-cpu2" runs MirroredStrategy over two logical CPU devices (the GPU code path, without GPUs).
"""

from __future__ import annotations

import json
import sys

import numpy as np

NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda", "mu",
         "nu", "xi", "omicron", "pi", "rho", "sigma", "tau", "upsilon", "phi", "chi", "psi", "omega"]


class Dump:
    def __init__(self, path):
        self.path = path

    def callback(self):
        import keras

        dump = self

        class _Dump(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.history = {}

            def on_epoch_end(self, epoch, logs=None):
                for k, v in (logs or {}).items():
                    self.history.setdefault(k, []).append(float(v))

            def on_train_end(self, logs=None):
                arrays = {f"w{i}": np.asarray(w) for i, w in enumerate(self.model.get_weights())}
                np.savez(dump.path, history=np.array(json.dumps(self.history)), **arrays)

        return _Dump()


def main(domain: str, distribute: str, batch: int, dump: str) -> None:
    from app.core.modelconfig import ModelConfig, TrainConfig

    placement = None
    if distribute == "mirrored-cpu2":
        import tensorflow as tf

        from app.core.distribute import Placement

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        placement = Placement(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]), "mirrored", 2, 1, True,
                              ["CPU:0", "CPU:1"])
        distribute = "mirrored"
    cfg = TrainConfig(epochs=2, batch_size=batch, learning_rate=1e-2, patience=5, seed=0, distribute=distribute)
    hook = Dump(dump).callback()
    if domain == "names":
        from app.names.train import train_names_model

        with open("names.txt", "w", encoding="utf-8") as f:
            f.write("\n".join(n + s for n in NAMES for s in ("", "saurus", "don")) + "\n")
        train_names_model("names.txt", "model", ModelConfig(units=8, input="embedding", embed_dim=4), cfg,
                          log_dir="logs", progress=False, hooks=[hook], placement=placement)
    else:
        from app.music.codec import MelodyCodec
        from app.music.train import MusicData, train_music

        codec = MelodyCodec(60, 72)
        from tests.music_fixtures import pattern_pieces

        rng = np.random.default_rng(0)
        data = MusicData(train=pattern_pieces(codec, 48, rng), val=pattern_pieces(codec, 8, rng), vocab=codec.vocab, source={"path": "synthetic"},
                         codec={"min_pitch": 60, "max_pitch": 72, "steps_per_quarter": 4,
                                "time_signature": [4, 4], "qpm": 120.0})
        train_music(data, "model", ModelConfig(units=8), cfg, tx=16, log_dir="logs", progress=False,
                    baselines=False, hooks=[hook], placement=placement)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4])

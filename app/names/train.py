"""Train a names model end to end: names file -> codec -> Keras model -> self-describing model folder."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from app import __version__
from app.core.folder import check_model_destination, command_line, file_sha256, now_iso, save_model_folder
from app.core.metrics import masked_nll, nll_summary
from app.core.modelconfig import ModelConfig, TrainConfig
from app.names.codec import NameCodec, read_names, split_names

# The shipped dinosaur model's settings (chosen on the validation split; see BENCHMARKS.md).
DEFAULT_MODEL = ModelConfig(cell="lstm", units=128, layers=1, dropout=0.4, recurrent_dropout=0.3,
                            input="embedding", embed_dim=32)
DEFAULT_TRAIN = TrainConfig(epochs=150, batch_size=32, learning_rate=3e-3, lr_decay=0.98, clipnorm=1.0,
                            patience=15)


def train_names_model(data: str | Path, out: str | Path, model_cfg: ModelConfig = DEFAULT_MODEL,
                      train_cfg: TrainConfig = DEFAULT_TRAIN, *, lowercase: bool = True,
                      log_dir: str | Path | None = None, progress: bool = True, force: bool = False) -> dict:
    """Read `data`, split by `train_cfg.seed`, train, evaluate on validation, save the folder at `out`.

    `out` is checked before anything else (app.core.folder.check_model_destination): an existing model folder
    is replaced only with `force`, and a folder holding anything else never.
    Returns the model card (also written as card.json). NLL figures are nats per character, end-of-name counted.
    """
    out = check_model_destination(out, force=force)
    names = read_names(data, lowercase=lowercase)
    train_names, val_names = split_names(names, train_cfg.val_fraction, train_cfg.seed)
    if not val_names:
        from app.errors import DataError

        raise DataError(f"{data}: need at least 2 distinct names to hold one out for validation, got {len(names)}")
    codec = NameCodec.build(names)
    xy_train, xy_val = codec.xy(train_names), codec.xy(val_names)

    from app.core.model import build_model, export_weights
    from app.core.train import fit

    model = build_model(model_cfg, codec.vocab.size, seed=train_cfg.seed)
    t0 = time.perf_counter()
    history = fit(model, xy_train, xy_val, train_cfg, log_dir=log_dir, progress=progress)
    seconds = time.perf_counter() - t0
    weights = export_weights(model, model_cfg)

    from app.core.stepper import NumpyStepper

    stepper = NumpyStepper(weights, model_cfg, codec.vocab.size)
    val_nll, val_tokens = masked_nll(stepper.run(xy_val[0]), xy_val[1], xy_val[2])
    train_nll, train_tokens = masked_nll(stepper.run(xy_train[0]), xy_train[1], xy_train[2])
    val_loss = history.get("val_loss", [])
    card = {
        "name": Path(out).name,
        "domain": "names",
        "created": now_iso(),
        "app_version": __version__,
        "command": command_line(),
        "data": {"file": Path(data).name, "sha256": file_sha256(data), "names": len(names),
                 "train_names": len(train_names), "val_names": len(val_names), "lowercase": lowercase},
        "model": dataclasses.asdict(model_cfg),
        "train": dataclasses.asdict(train_cfg),
        "parameters": int(sum(int(np.prod(w.shape)) for w in weights.values())),
        "metrics": {
            "validation": nll_summary(val_nll, val_tokens),
            "train": nll_summary(train_nll, train_tokens),
            "epochs_run": len(history.get("loss", [])),
            "best_epoch": int(np.argmin(val_loss)) + 1 if val_loss else None,
            "train_seconds": round(seconds, 1),
        },
    }
    config = {"domain": "names", "model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
              "codec": {"lowercase": lowercase}}
    save_model_folder(out, keras_model=model, weights=weights, vocab=codec.vocab, config=config, card=card,
                      extra_files={"names_train.txt": "\n".join(train_names) + "\n",
                                   "names_val.txt": "\n".join(val_names) + "\n"})
    return card

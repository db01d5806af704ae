"""Train a names model end to end: names file -> codec -> Keras model -> self-describing model folder."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from app import __version__
from app.core.folder import command_line, file_sha256, now_iso, save_model_folder
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
                      log_dir: str | Path | None = None, progress: bool = True, placement=None,
                      hooks: Sequence = ()) -> dict:
    """Read `data`, split by `train_cfg.seed`, train, evaluate on validation, save the folder at `out`.

    Returns the model card (also written as card.json). NLL figures are nats per character, end-of-name counted.
    placement: an `app.core.distribute.Placement` (default: `train_cfg.distribute`); only its chief writes files.
    A killed run is continued by the same call (see app.core.runstate: `<out>.run/`).
    """
    names = read_names(data, lowercase=lowercase)
    train_names, val_names = split_names(names, train_cfg.val_fraction, train_cfg.seed)
    if not val_names:
        from app.errors import DataError

        raise DataError(f"{data}: need at least 2 distinct names to hold one out for validation, got {len(names)}")
    codec = NameCodec.build(names)
    xy_train, xy_val = codec.xy(train_names), codec.xy(val_names)

    from app.core.distribute import make_placement
    from app.core.model import build_model, export_weights
    from app.core.runstate import RunState
    from app.core.train import fit

    placement = placement or make_placement(train_cfg.distribute)
    run = RunState(out, {"data_sha256": file_sha256(data), "lowercase": lowercase,
                         "model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
                         "replicas": placement.replicas}, is_chief=placement.is_chief)
    with placement.scope():
        model = build_model(model_cfg, codec.vocab.size, seed=train_cfg.seed)
    t0 = time.perf_counter()
    fit(model, xy_train, xy_val, train_cfg, log_dir=log_dir, progress=progress, placement=placement,
        run_state=run, hooks=hooks)
    history = run.history  # every finished epoch, including those of a run this one continued
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
        "distribute": placement.card(),
        "resumed_from_epoch": run.restored_epoch,
    }
    config = {"domain": "names", "model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
              "codec": {"lowercase": lowercase}}
    save_model_folder(placement.write_path(out), keras_model=model, weights=weights, vocab=codec.vocab, config=config, card=card,
                      extra_files={"names_train.txt": "\n".join(train_names) + "\n",
                                   "names_val.txt": "\n".join(val_names) + "\n"})
    run.finish()
    placement.cleanup()
    return card

"""Train a names model end to end: names file -> codec -> Keras model -> self-describing model folder."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from app.core.folder import check_model_destination, file_sha256, make_card, save_model_folder
from app.core.metrics import masked_nll, nll_summary
from app.core.modelconfig import ModelConfig, TrainConfig
from app.names.codec import NameCodec, read_names, split_names

# Named presets (model, training). "small" holds the shipped dinosaur model's settings (chosen on its validation
# split; see BENCHMARKS.md): strong regularisation for ~1,500 names. Bigger lists need less of it and more
# capacity; "large" was measured on 88,799 US surnames (BENCHMARKS.md); "medium" lies between the two (untuned).
PRESETS: dict[str, tuple[ModelConfig, TrainConfig]] = {
    "small": (ModelConfig(cell="lstm", units=128, layers=1, dropout=0.4, recurrent_dropout=0.3, input="embedding",
                          embed_dim=32),
              TrainConfig(epochs=150, batch_size=32, learning_rate=3e-3, lr_decay=0.98, clipnorm=1.0, patience=15)),
    "medium": (ModelConfig(cell="lstm", units=192, layers=1, dropout=0.25, recurrent_dropout=0.1,
                           input="embedding", embed_dim=48),
               TrainConfig(epochs=80, batch_size=64, learning_rate=3e-3, lr_decay=0.95, clipnorm=1.0, patience=6,
                           time_limit_min=30)),
    "large": (ModelConfig(cell="lstm", units=256, layers=1, dropout=0.1, recurrent_dropout=0.0, input="embedding",
                          embed_dim=64),
              TrainConfig(epochs=30, batch_size=128, learning_rate=3e-3, lr_decay=0.9, clipnorm=1.0, patience=3,
                          time_limit_min=12)),
}
PRESET_LIMITS = (("small", 5_000), ("medium", 20_000))  # fewer distinct names than this -> that preset
DEFAULT_MODEL, DEFAULT_TRAIN = PRESETS["small"]


def preset_for(n_names: int) -> str:
    """The preset for a list of `n_names` distinct names: small below 5,000, medium below 20,000, else large."""
    for name, limit in PRESET_LIMITS:
        if n_names < limit:
            return name
    return "large"


def resolve_configs(n_names: int, preset: str | None = None, model_cfg: ModelConfig | None = None,
                    train_cfg: TrainConfig | None = None) -> tuple[str, ModelConfig, TrainConfig]:
    """(preset name, model config, train config): given configs win, the rest come from `preset` (default: the
    one for the data size)."""
    from app.core.config import check_choice

    preset = preset or preset_for(n_names)
    check_choice("preset", preset, tuple(PRESETS))
    m, t = PRESETS[preset]
    return preset, model_cfg or m, train_cfg or t


def train_names_model(data: str | Path, out: str | Path, model_cfg: ModelConfig | None = None,
                      train_cfg: TrainConfig | None = None, *, preset: str | None = None, lowercase: bool = True,
                      log_dir: str | Path | None = None, progress: bool = True, force: bool = False,
                      placement=None, hooks: Sequence = ()) -> dict:
    """Read `data`, split by `train_cfg.seed`, train, evaluate on validation, save the folder at `out`.

    Configs not given come from `preset` (default: picked from the number of distinct names, `preset_for`).
    `out` is checked before anything else (app.core.folder.check_model_destination): an existing model folder
    is replaced only with `force`, and a folder holding anything else never.
    Returns the model card (also written as card.json). NLL figures are nats per character, end-of-name counted.
    placement: an `app.core.distribute.Placement` (default: `train_cfg.distribute`); only its chief writes files.
    A killed run is continued by the same call (see app.core.runstate: `<out>.run/`).
    """
    out = check_model_destination(out, force=force)
    names = read_names(data, lowercase=lowercase)
    preset, model_cfg, train_cfg = resolve_configs(len(names), preset, model_cfg, train_cfg)
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
    card = make_card(
        name=Path(out).name, domain="names", status="done",
        data={"file": Path(data).name, "sha256": file_sha256(data), "names": len(names),
              "train_names": len(train_names), "val_names": len(val_names), "lowercase": lowercase},
        model=model_cfg, train={**dataclasses.asdict(train_cfg), "preset": preset}, history=history,
        metrics={"validation": nll_summary(val_nll, val_tokens), "train": nll_summary(train_nll, train_tokens)},
        seconds=seconds, parameters=int(sum(int(np.prod(w.shape)) for w in weights.values())),
        distribute=placement.card(), resumed_from_epoch=run.restored_epoch)
    config = {"domain": "names", "model": dataclasses.asdict(model_cfg), "train": dataclasses.asdict(train_cfg),
              "codec": {"lowercase": lowercase}}
    save_model_folder(placement.write_path(out), keras_model=model, weights=weights, vocab=codec.vocab, config=config, card=card,
                      extra_files={"names_train.txt": "\n".join(train_names) + "\n",
                                   "names_val.txt": "\n".join(val_names) + "\n"})
    run.finish()
    placement.cleanup()
    return card

"""Configs of the shared sequence model and its training (frozen, validated, no TensorFlow import)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.config import check_choice, check_range

CELLS = ("lstm", "gru")
INPUTS = ("onehot", "embedding")
DISTRIBUTE_CHOICES = ("auto", "none", "mirrored", "multi-worker")  # see app.core.distribute


@dataclass(frozen=True)
class ModelConfig:
    """Token ids (batch, time) -> input layer -> `layers` stacked recurrent layers of `units` -> Dense logits.

    input: "onehot" (the course's layout: x_t is a one-hot vector of size vocab) or "embedding" (embed_dim floats).
    dropout: applied between recurrent layers and before the output layer during training only;
    recurrent_dropout: dropout on the recurrent state inside each cell (training only; slower, regularises
    small data sets such as a few thousand names).
    """

    cell: str = "lstm"
    units: int = 128
    layers: int = 1
    dropout: float = 0.0
    recurrent_dropout: float = 0.0
    input: str = "onehot"
    embed_dim: int = 32

    def __post_init__(self) -> None:
        check_choice("cell", self.cell, CELLS)
        check_choice("input", self.input, INPUTS)
        check_range("units", self.units, 1, 4096)
        check_range("layers", self.layers, 1, 8)
        check_range("dropout", self.dropout, 0.0, 1.0, hi_open=True)
        check_range("recurrent_dropout", self.recurrent_dropout, 0.0, 1.0, hi_open=True)
        check_range("embed_dim", self.embed_dim, 1, 4096)


@dataclass(frozen=True)
class TrainConfig:
    """Adam with gradient-norm clipping; early stopping on validation loss restores the best epoch.

    learning_rate decays by `lr_decay` every epoch (a schedule: Keras 3 removed Adam(decay=...)).
    """

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    lr_decay: float = 1.0
    clipnorm: float = 1.0
    patience: int = 8
    seed: int = 0
    val_fraction: float = 0.1
    distribute: str = field(default="auto", metadata={
        "help": "none: one device; mirrored: all local GPUs; multi-worker: the machines in TF_CONFIG; "
                "auto: mirrored when more than one GPU is visible, else none. --batch-size is per replica",
        "choices": DISTRIBUTE_CHOICES})

    def __post_init__(self) -> None:
        check_choice("distribute", self.distribute, DISTRIBUTE_CHOICES)
        check_range("epochs", self.epochs, 1, 100000)
        check_range("batch_size", self.batch_size, 1, 1 << 16)
        check_range("learning_rate", self.learning_rate, 0.0, 10.0, lo_open=True)
        check_range("lr_decay", self.lr_decay, 0.0, 1.0, lo_open=True)
        check_range("clipnorm", self.clipnorm, 0.0, None, lo_open=True)
        check_range("patience", self.patience, 1, 100000)
        check_range("val_fraction", self.val_fraction, 0.0, 0.9, lo_open=True)

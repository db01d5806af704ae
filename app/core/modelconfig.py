"""Configs of the shared sequence model and its training (frozen, validated, no TensorFlow import).

Each field is declared once with its help text and bounds (`app.core.options.opt`): the same declaration makes the
`train` commands' flags, the validation and the web controls' ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.core.cells import CELLS
from app.core.options import opt, validate

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

    cell: str = opt("lstm", "recurrent cell (app/core/cells.py)", choices=lambda: tuple(CELLS))
    units: int = opt(128, "cell size n_a (units per layer)", lo=1, hi=4096)
    layers: int = opt(1, "stacked recurrent layers", lo=1, hi=8)
    dropout: float = opt(0.0, "dropout between layers and before the output, training only", lo=0.0, hi=1.0,
                         hi_open=True)
    recurrent_dropout: float = opt(0.0, "dropout on the recurrent state inside each cell (training only; slower)",
                                   lo=0.0, hi=1.0, hi_open=True)
    input: str = opt("onehot", "input layer: one-hot vectors (the course's) or a learned embedding", choices=INPUTS)
    embed_dim: int = opt(32, "embedding size (with --input embedding)", lo=1, hi=4096)

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class TrainConfig:
    """Adam with gradient-norm clipping; early stopping on validation loss restores the best epoch.

    learning_rate decays by `lr_decay` every epoch (a schedule: Keras 3 removed Adam(decay=...)). time_limit_min:
    no new epoch starts once this many minutes of training have passed (0 = no limit); the best epoch is kept.
    """

    epochs: int = opt(60, "maximum epochs (early stopping may end sooner)", lo=1, hi=100000)
    batch_size: int = opt(64, "sequences per batch", lo=1, hi=1 << 16)
    learning_rate: float = opt(3e-3, "Adam learning rate", lo=0.0, hi=10.0, lo_open=True, flag=("--lr",))
    lr_decay: float = opt(1.0, "learning-rate factor per epoch (0 < d <= 1)", lo=0.0, hi=1.0, lo_open=True)
    clipnorm: float = opt(1.0, "gradient-norm clipping", lo=0.0, hi=1e6, lo_open=True)
    patience: int = opt(8, "epochs without validation improvement before stopping", lo=1, hi=100000)
    seed: int = opt(0, "split and initialisation seed", lo=0, hi=2**32 - 1)
    val_fraction: float = opt(0.1, "share of the data held out for validation", lo=0.0, hi=0.9, lo_open=True)
    time_limit_min: float = opt(0.0, "stop starting new epochs after this many minutes (0 = no limit)",
                                lo=0.0, hi=1e6)
    distribute: str = opt("auto", "none: one device; mirrored: all local GPUs; multi-worker: the machines in "
                                  "TF_CONFIG; auto: mirrored when more than one GPU is visible, else none. "
                                  "--batch-size is per replica", choices=DISTRIBUTE_CHOICES)

    def __post_init__(self) -> None:
        validate(self)

"""`basic`: the document's model unchanged (djmodel / music_inference_model; fast forms in app.core)."""

from __future__ import annotations

from dataclasses import dataclass

from app.music.archs.base import Arch, register


@dataclass(frozen=True)
class BasicSettings:
    """No settings: one-hot of the previous token in, next-token probabilities out."""


def make_stepper(weights, model_cfg, settings, vocab_size, *, time_signature=(4, 4), spq=4):
    from app.core.stepper import NumpyStepper

    return NumpyStepper(weights, model_cfg, vocab_size)


def weight_shapes(model_cfg, settings, vocab_size, spq=4) -> dict[str, tuple[int, ...]]:
    """The arrays of weights.npz and their shapes (the shared sequence model's layout)."""
    from app.core.stepper import expected_shapes

    return expected_shapes(model_cfg, vocab_size)


def training_arrays(pieces, metres, settings, vocab_size, spq, tx):
    from app.music.train import sequence_chunks

    return sequence_chunks(pieces, tx)


ARCH = register(Arch("basic", "the document's LSTM (previous token in, next token out)", BasicSettings,
                     "app.music.archs.basic", "app.music.archs.basic_keras", metre_input=False))

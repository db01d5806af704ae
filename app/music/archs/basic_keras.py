"""Keras side of `basic`: app.core.model's whole-sequence trainer, the document's music_inference_model."""

from __future__ import annotations

from app.core.model import export_weights, import_weights  # noqa: F401  (the arch API)


def build_trainer(model_cfg, settings, vocab_size, seed=0, spq=4):
    from app.core.model import build_model

    return build_model(model_cfg, vocab_size, seed=seed)


def inference_model(weights, model_cfg, settings, vocab_size, Ty, time_signature=(4, 4), spq=4):
    from app.music import models as M

    _, cell, densor = M.build_doc_layers(weights, model_cfg, vocab_size)
    return M.music_inference_model(cell, densor, Ty=Ty)

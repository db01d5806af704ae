"""Held-out evaluation of a names model (numpy only): NLL in nats/char with end-of-name counted, and novelty."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.core.metrics import masked_nll, nll_summary
from app.names.codec import read_names
from app.names.generator import NameGenerator, make_options


def heldout_nll(gen: NameGenerator, names: list[str]) -> dict:
    """NLL of `names` under the model: nats per character, each name's end-of-name token counted."""
    x, y, w = gen.codec.xy(names)
    nats, tokens = masked_nll(gen.stepper.run(x), y, w)
    return nll_summary(nats, tokens)


def evaluate(model: str | Path | None, data: str | Path | None = None, n_samples: int = 1000, seed: int = 0) -> dict:
    gen = NameGenerator.load(model)
    if data is None:
        names, scored_on = gen.val_names, "the model's validation split"
    else:
        names, scored_on = read_names(data, lowercase=gen.lowercase), str(data)
        for name in names:
            gen.codec.check_text(name, f"name in {data}")
    result = gen.run(make_options(n=n_samples, temperature=1.0, seed=seed))
    return {"model": str(gen.folder.path), "scored_on": scored_on, "heldout": heldout_nll(gen, names),
            "novelty": result.report, "samples_preview": result.names[:10],
            "mean_length": float(np.mean([len(s) for s in result.names]))}

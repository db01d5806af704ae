"""Generic beam search over any step function (numpy; used by music generation, usable by names).

The model is given as two functions, the interface of `app.core.stepper.NumpyStepper`:
  step(ids (b,), state) -> (logits (b, vocab), new state)
  select(state, rows)   -> state with only/duplicated batch rows `rows` (int indices)
A hypothesis' score is the sum of its tokens' log-probabilities (log-softmax of the logits, with disallowed tokens
removed and the rest renormalised, the same distribution `sample_next` draws from at temperature 1). All hypotheses
have the same length, so no length normalisation is needed. Ties are broken by the lower (parent, token) index,
so the result is deterministic.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from app.core.sampling import log_softmax
from app.errors import OptionError


def beam_search(step: Callable, select: Callable, state, last_id: int, length: int, beam_size: int,
                allowed: np.ndarray | None = None, n_best: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Most likely continuations of one prefix.

    state: the model state after the prefix, batch 1; last_id: the prefix's last token (the next step's input;
    -1 for the zero input). allowed: optional bool mask (vocab,). Returns (seqs (n_best, length) int32,
    scores (n_best,) float64 total log-probabilities), best first.
    """
    if beam_size < 1:
        raise OptionError(f"beam size must be >= 1, got {beam_size}")
    if not 1 <= n_best <= beam_size:
        raise OptionError(f"cannot return {n_best} sequences from a beam of {beam_size}; use a beam size >= {n_best}")
    if length < 1:
        raise OptionError(f"length must be >= 1, got {length}")
    seqs = np.zeros((1, 0), np.int32)
    scores = np.zeros(1, np.float64)
    x = np.array([last_id], np.int64)
    for _ in range(length):
        logits, state = step(x, state)
        logits = np.asarray(logits, np.float64)
        if allowed is not None:
            if not np.any(allowed):
                raise OptionError("the constraints leave no allowed token")
            logits = np.where(allowed[None, :], logits, -np.inf)
        total = scores[:, None] + log_softmax(logits)  # (h, vocab)
        flat = total.ravel()
        k = min(beam_size, int(np.isfinite(flat).sum()))
        # stable sort on -score: equal scores keep the lower flat index (parent-major, then token)
        best = np.argsort(-flat, kind="stable")[:k]
        parents, tokens = np.divmod(best, total.shape[1])
        seqs = np.concatenate([seqs[parents], tokens[:, None].astype(np.int32)], axis=1)
        scores = flat[best]
        state = select(state, parents)
        x = tokens
    if len(scores) < n_best:
        raise OptionError(f"only {len(scores)} distinct sequences are possible, {n_best} were asked for")
    return seqs[:n_best], scores[:n_best]

"""Choosing the next token from model outputs: a pure function of (logits, options, random generator).

Shapes: logits (batch, vocab) in nats (unnormalised log-probabilities). Returns ids (batch,) int32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.core.options import opt, validate
from app.errors import OptionError


@dataclass(frozen=True)
class SamplingOptions:
    """How the next token is chosen from the logits (each field declared once: flag, bounds, web range)."""

    temperature: float = opt(1.0, "divides the logits; > 0, lower is safer, higher is wilder", lo=0.0, hi=100.0,
                             lo_open=True, ui=(0.1, 2.0, 0.05))
    top_k: int | None = opt(None, "sample among the k most likely tokens (1 = greedy)", lo=1, hi=1_000_000)
    top_p: float | None = opt(None, "nucleus sampling: keep the smallest set reaching probability p, 0 < p <= 1",
                              lo=0.0, hi=1.0, lo_open=True)
    greedy: bool = opt(False, "argmax at every step (the document's choice)")
    min_p: float | None = opt(None, "drop tokens less likely than min_p times the most likely one, 0 < m <= 1",
                              lo=0.0, hi=1.0, lo_open=True)

    def __post_init__(self) -> None:
        validate(self)


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    z = logits - logits.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def sample_next(logits: np.ndarray, rng: np.random.Generator, options: SamplingOptions = SamplingOptions(),
                allowed: np.ndarray | None = None) -> np.ndarray:
    """Sample one token per row.

    logits: (batch, vocab). allowed: optional bool mask (vocab,) or (batch, vocab); disallowed tokens get
    probability 0 (a row with nothing allowed is an error, since it means the constraints contradict).
    rng: an explicit numpy Generator, so the same seed gives the same tokens.
    """
    if not isinstance(options, SamplingOptions):
        raise OptionError("options must be a SamplingOptions")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2:
        raise OptionError(f"logits must have shape (batch, vocab), got {logits.shape}")
    if allowed is not None:
        allowed = np.broadcast_to(np.asarray(allowed, dtype=bool), logits.shape)
        if not allowed.any(axis=1).all():
            raise OptionError("the constraints leave no allowed token for some sample")
        logits = np.where(allowed, logits, -np.inf)
    if options.greedy or options.top_k == 1:
        return logits.argmax(axis=1).astype(np.int32)
    z = logits / options.temperature
    if options.top_k is not None and options.top_k < z.shape[1]:
        kth = np.partition(z, -options.top_k, axis=1)[:, -options.top_k][:, None]
        z = np.where(z >= kth, z, -np.inf)
    probs = softmax(z)
    if options.min_p is not None:
        probs = np.where(probs >= options.min_p * probs.max(axis=1, keepdims=True), probs, 0.0)
        probs /= probs.sum(axis=1, keepdims=True)
    if options.top_p is not None and options.top_p < 1.0:
        order = np.argsort(-probs, axis=1)
        sorted_p = np.take_along_axis(probs, order, axis=1)
        cum = np.cumsum(sorted_p, axis=1)
        # keep a token if the mass before it is < p (so the first token is always kept)
        keep_sorted = (cum - sorted_p) < options.top_p
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, axis=1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(axis=1, keepdims=True)
    # inverse-CDF sampling: one uniform draw per row, vectorised over the batch
    cum = np.cumsum(probs, axis=1)
    u = rng.random((probs.shape[0], 1)) * cum[:, -1:]
    ids = (cum <= u).sum(axis=1)
    return np.minimum(ids, probs.shape[1] - 1).astype(np.int32)


def row_chooser(kind: str, options: SamplingOptions, allowed: np.ndarray | None, rng: np.random.Generator):
    """`sample_next` for one row, specialised once for a whole generation: returns choose(scores (V,)) -> int.

    kind: "logits" (unnormalised log-probabilities) or "probs" (unnormalised probabilities, >= 0), as a runner
    returns them (app.core.runner). The draw follows the same distribution as `sample_next` on the equivalent logits
    (greedy: the same argmax, first index on ties), using one rng.random() per token as sample_next does per row.
    Temperature-only sampling and greedy run as a few calls on the (V,) row; top-k, top-p and min-p, and a row
    whose allowed mass underflows, go through `sample_next` itself.
    """
    if kind not in ("logits", "probs"):
        raise OptionError(f"scores kind must be 'logits' or 'probs', got {kind!r}")
    if not isinstance(options, SamplingOptions):
        raise OptionError("options must be a SamplingOptions")
    mask = None if allowed is None else np.asarray(allowed, dtype=bool)
    if mask is not None and not mask.any():
        raise OptionError("the constraints leave no allowed token for some sample")
    keep = None if mask is None else mask.astype(np.float32)  # 1 allowed, 0 not
    veto = None if mask is None else np.where(mask, 0.0, -np.inf).astype(np.float32)

    def general(scores: np.ndarray) -> int:
        if kind == "probs":
            p = np.asarray(scores, np.float64)
            logits = np.log(np.maximum(p / p.sum(), 1e-30))
        else:
            logits = scores
        return int(sample_next(np.asarray(logits, np.float64)[None], rng, options, mask)[0])

    if options.greedy or options.top_k == 1:
        if mask is None:
            return lambda scores: int(scores.argmax())

        def greedy(scores: np.ndarray) -> int:
            x = int((scores * keep if kind == "probs" else scores + veto).argmax())
            return x if mask[x] else general(scores)  # every allowed probability underflowed to 0

        return greedy
    if options.top_k is not None or options.top_p is not None or options.min_p is not None:
        return general
    inv_t = 1.0 / options.temperature
    random, exp, cumsum = rng.random, np.exp, np.cumsum

    def draw(w: np.ndarray, scores: np.ndarray) -> int:
        cum = cumsum(w)
        total = float(cum[-1])
        if not 0.0 < total < np.inf:
            return general(scores)
        return min(int(cum.searchsorted(random() * total, "right")), len(cum) - 1)

    if kind == "logits":
        def sample_logits(scores: np.ndarray) -> int:
            w = scores - scores.max()
            if inv_t != 1.0:
                w *= inv_t
            exp(w, out=w)
            if keep is not None:
                w *= keep
            return draw(w, scores)

        return sample_logits

    def sample_probs(scores: np.ndarray) -> int:
        w = scores * keep if keep is not None else scores
        if inv_t != 1.0:
            top = w.max()
            if not top > 0.0:
                return general(scores)
            w = (w / top) ** inv_t  # scaled to <= 1 first, so no overflow
        return draw(w, scores)

    return sample_probs

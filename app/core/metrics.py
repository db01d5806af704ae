"""Evaluation helpers shared by names and music (numpy only)."""

from __future__ import annotations

import math

import numpy as np

from app.core.sampling import log_softmax


def masked_nll(logits: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[float, int]:
    """Mean NLL in nats per real token: logits (batch, time, vocab), y and w (batch, time); w = 0 on padding."""
    lp = log_softmax(logits.astype(np.float64))
    picked = np.take_along_axis(lp, y[..., None].astype(np.int64), axis=-1)[..., 0]
    n = float(w.sum())
    return float(-(picked * w).sum() / n), int(n)


def nll_summary(nats: float, tokens: int, unit: str = "char") -> dict:
    """nats/token -> {nats, bits, perplexity} with the unit named."""
    return {f"nll_nats_per_{unit}": nats, f"nll_bits_per_{unit}": nats / math.log(2),
            "perplexity": float(np.exp(nats)), "tokens": tokens}


def novelty(samples: list[str], train: set[str], val: set[str] | None = None) -> dict:
    """makemore-style report: how many samples are new vs copied from the training data."""
    n = len(samples)
    in_train = sum(s in train for s in samples)
    out = {"samples": n, "unique": len(set(samples)), "in_train": in_train, "new": n - in_train,
           "new_fraction": (n - in_train) / n if n else float("nan"),
           "unique_fraction": len(set(samples)) / n if n else float("nan")}
    if val is not None:
        out["in_validation"] = sum(s in val and s not in train for s in samples)
    return out


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits between two non-negative vectors of the same support (normalised here)."""
    p = np.asarray(p, float)
    q = np.asarray(q, float)
    if p.sum() <= 0 or q.sum() <= 0:
        return float("nan")
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)

    def kl(a, b):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / b[nz])).sum())

    return max(0.0, 0.5 * kl(p, m) + 0.5 * kl(q, m))

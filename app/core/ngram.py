"""Count-based n-gram baselines over token ids (our own; used by the benchmarks and `evaluate`).

A sequence [s0, s1, ..., sn] is scored on s1..sn, each given the up to n-1 tokens before it; positions before s0
are a padding context (-1). Two smoothings:
  add-k        p(w | h) = (c(h, w) + k) / (c(h) + k V)                        (unigram, bigram, trigram rows)
  Witten-Bell  p(w | h) = (c(h, w) + T(h) p(w | h')) / (c(h) + T(h))          (interpolated 1..n-gram row)
with h' the history shortened by one token, T(h) the number of distinct tokens seen after h, and the recursion
ending in an add-one unigram. NLL is reported in nats per scored token.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Iterable, Sequence


from app.errors import OptionError


class NGramModel:
    def __init__(self, order: int, vocab_size: int, smoothing: str = "witten-bell", k: float = 1.0):
        if order < 1:
            raise OptionError(f"n-gram order must be >= 1, got {order}")
        if smoothing not in ("add-k", "witten-bell"):
            raise OptionError(f"smoothing must be add-k or witten-bell, got {smoothing!r}")
        self.order, self.V, self.smoothing, self.k = order, vocab_size, smoothing, k
        # counts[m][history of length m] -> Counter of next tokens, for m = 0..order-1
        self.counts: list[dict[tuple, Counter]] = [defaultdict(Counter) for _ in range(order)]

    @property
    def name(self) -> str:
        names = {1: "unigram", 2: "bigram", 3: "trigram"}
        if self.smoothing == "witten-bell" and self.order > 1:
            return f"interpolated 1-{self.order}-gram (Witten-Bell)"
        return f"{names.get(self.order, f'{self.order}-gram')} (add-{self.k:g})"

    @staticmethod
    def _events(seq: Sequence[int], order: int) -> Iterable[tuple[tuple, int]]:
        padded = [-1] * (order - 1) + [int(t) for t in seq]
        for t in range(1, len(seq)):
            j = t + order - 1  # index of seq[t] in padded
            yield tuple(padded[j - order + 1:j]), padded[j]

    def fit(self, seqs: Iterable[Sequence[int]]) -> "NGramModel":
        for seq in seqs:
            for hist, w in self._events(seq, self.order):
                for m in range(self.order):
                    self.counts[m][hist[len(hist) - m:] if m else ()][w] += 1
        self._totals = [{h: sum(c.values()) for h, c in cm.items()} for cm in self.counts]
        return self

    def prob(self, hist: tuple, w: int) -> float:
        """p(w | hist), hist = the previous order-1 tokens (padding -1 where before the start)."""
        c0 = self.counts[0][()]
        p = (c0[w] + 1.0) / (self._totals[0].get((), 0) + self.V)  # add-one unigram
        if self.smoothing == "add-k":
            if self.order == 1:
                return (c0[w] + self.k) / (self._totals[0].get((), 0) + self.k * self.V)
            h = hist[len(hist) - (self.order - 1):]
            c = self.counts[self.order - 1].get(h)
            n = self._totals[self.order - 1].get(h, 0)
            return ((c[w] if c else 0) + self.k) / (n + self.k * self.V)
        for m in range(1, self.order):
            h = hist[len(hist) - m:]
            c = self.counts[m].get(h)
            if not c:
                continue  # unseen history: keep the lower-order estimate
            n, types = self._totals[m][h], len(c)
            p = (c[w] + types * p) / (n + types)
        return p

    def nll(self, seqs: Iterable[Sequence[int]]) -> tuple[float, int]:
        """(mean NLL in nats per scored token, number of scored tokens)."""
        total, count = 0.0, 0
        for seq in seqs:
            for hist, w in self._events(seq, self.order):
                total -= math.log(self.prob(hist, w))
                count += 1
        return (total / count if count else float("nan")), count


def fit_baselines(train: Sequence[Sequence[int]], val: Sequence[Sequence[int]], vocab_size: int,
                  ks: Sequence[float] = (0.01, 0.03, 0.1, 0.3, 1.0), max_order: int = 5) -> list[dict]:
    """Unigram/bigram/trigram (add-k, k chosen on `val`: favours the baseline) and Witten-Bell 1..max_order.

    Returns rows {"name", "order", "nll", "tokens"} with nll in nats/token on `val`.
    """
    rows = []
    for order in (1, 2, 3):
        best = None
        for k in ks:
            m = NGramModel(order, vocab_size, "add-k", k).fit(train)
            nll, n = m.nll(val)
            if best is None or nll < best[0]:
                best = (nll, n, m.name)
        rows.append({"name": best[2], "order": order, "nll": best[0], "tokens": best[1]})
    m = NGramModel(max_order, vocab_size, "witten-bell").fit(train)
    nll, n = m.nll(val)
    rows.append({"name": m.name, "order": max_order, "nll": nll, "tokens": n})
    return rows

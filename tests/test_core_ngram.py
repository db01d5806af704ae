"""The n-gram baselines: proper distributions, hand-counted probabilities, NLL conventions, bad options."""

from __future__ import annotations

import math

import pytest

from app.core.ngram import NGramModel, fit_baselines
from app.errors import OptionError

SEQS = [[0, 1, 2, 1, 3], [0, 1, 1, 3], [0, 2, 3]]  # 0 = start token, 3 = end token, vocabulary of 4
V = 4


def histories(order: int):
    """Every history of length order-1 over the vocabulary plus the padding id -1."""
    from itertools import product

    return list(product([-1, *range(V)], repeat=order - 1))


@pytest.mark.parametrize("order,smoothing", [(1, "add-k"), (2, "add-k"), (3, "add-k"), (2, "witten-bell"),
                                             (3, "witten-bell"), (5, "witten-bell")])
def test_probabilities_sum_to_one_in_every_context(order, smoothing):
    m = NGramModel(order, V, smoothing, k=0.3).fit(SEQS)
    for h in histories(order):
        assert sum(m.prob(h, w) for w in range(V)) == pytest.approx(1.0, abs=1e-12)


def test_add_k_bigram_matches_hand_counts():
    m = NGramModel(2, V, "add-k", k=1.0).fit(SEQS)
    # bigrams after token 1: (1,2), (1,3), (1,1), (1,3) -> c(1)=4, c(1,3)=2, c(1,0)=0
    assert m.prob((1,), 3) == pytest.approx((2 + 1) / (4 + 4))
    assert m.prob((1,), 0) == pytest.approx((0 + 1) / (4 + 4))
    # an unseen history falls back to uniform under add-k
    assert m.prob((3,), 2) == pytest.approx(1 / 4)


def test_witten_bell_bigram_matches_hand_counts():
    m = NGramModel(2, V, "witten-bell").fit(SEQS)
    # scored tokens (s1..sn): 1,2,1,3, 1,1,3, 2,3 -> unigram counts c(1)=4, c(2)=2, c(3)=3, c(0)=0; N=9
    p_uni = {w: (c + 1) / (9 + V) for w, c in {0: 0, 1: 4, 2: 2, 3: 3}.items()}
    assert m.prob((), 1) == pytest.approx(p_uni[1])  # order-1 part only when the history is empty
    # after token 1: next tokens 2, 3, 1, 3 -> n=4, T=3 distinct; p = (c + T p_uni) / (n + T)
    assert m.prob((1,), 3) == pytest.approx((2 + 3 * p_uni[3]) / (4 + 3))
    assert m.prob((1,), 0) == pytest.approx((0 + 3 * p_uni[0]) / (4 + 3))


def test_nll_scores_s1_to_sn_with_padding_history():
    m = NGramModel(2, V, "add-k", k=1.0).fit(SEQS)
    nll, n = m.nll([[0, 1]])
    assert n == 1
    # history of s1 is s0 = 0: bigrams after 0: (0,1), (0,1), (0,2) -> c=3
    assert nll == pytest.approx(-math.log((2 + 1) / (3 + 4)))


def test_fit_baselines_rows_and_names():
    rows = fit_baselines(SEQS, SEQS, V)
    assert [r["order"] for r in rows] == [1, 2, 3, 5]
    assert rows[-1]["name"] == "interpolated 1-5-gram (Witten-Bell)"
    assert all(r["tokens"] == 9 and r["nll"] > 0 for r in rows)
    assert rows[-1]["nll"] < rows[0]["nll"]  # context helps on data it has seen


@pytest.mark.parametrize("kw,match", [({"order": 0}, "order"), ({"order": 2, "smoothing": "kneser"}, "smoothing")])
def test_bad_options(kw, match):
    with pytest.raises(OptionError, match=match):
        NGramModel(vocab_size=V, **kw)

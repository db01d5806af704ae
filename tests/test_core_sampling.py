import numpy as np
import pytest

from app.core.sampling import SamplingOptions, sample_next, softmax
from app.errors import OptionError


def logits(batch=4000, probs=(0.5, 0.3, 0.15, 0.05)):
    return np.tile(np.log(np.array(probs)), (batch, 1))


@pytest.mark.parametrize("t", [0, -1.0])
def test_temperature_must_be_positive(t):
    with pytest.raises(OptionError, match=r"temperature must be in \(0"):
        SamplingOptions(temperature=t)


@pytest.mark.parametrize("p", [0.0, -0.1, 1.01])
def test_top_p_range(p):
    with pytest.raises(OptionError, match="top-p"):
        SamplingOptions(top_p=p)


def test_top_k_one_is_greedy_and_seed_reproducible():
    rng_logits = np.random.default_rng(3).normal(size=(50, 9))
    greedy = sample_next(rng_logits, np.random.default_rng(0), SamplingOptions(top_k=1))
    np.testing.assert_array_equal(greedy, rng_logits.argmax(1))
    a = sample_next(rng_logits, np.random.default_rng(7), SamplingOptions(temperature=1.3))
    b = sample_next(rng_logits, np.random.default_rng(7), SamplingOptions(temperature=1.3))
    np.testing.assert_array_equal(a, b)


def test_sampling_follows_the_distribution():
    ids = sample_next(logits(), np.random.default_rng(0))
    freq = np.bincount(ids, minlength=4) / len(ids)
    np.testing.assert_allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.03)


def test_low_temperature_sharpens_high_flattens():
    cold = np.bincount(sample_next(logits(), np.random.default_rng(0), SamplingOptions(0.3)), minlength=4)
    hot = np.bincount(sample_next(logits(), np.random.default_rng(0), SamplingOptions(3.0)), minlength=4)
    assert cold[0] > 0.8 * 4000 and hot[0] < 0.45 * 4000


def test_top_k_and_top_p_restrict_support():
    k2 = sample_next(logits(), np.random.default_rng(1), SamplingOptions(top_k=2))
    assert set(np.unique(k2)) == {0, 1}
    p = sample_next(logits(), np.random.default_rng(1), SamplingOptions(top_p=0.75))
    assert set(np.unique(p)) == {0, 1}  # 0.5 < 0.75 so token 1 is needed, 0.8 >= 0.75 so token 2 is not
    p1 = sample_next(logits(), np.random.default_rng(1), SamplingOptions(top_p=0.4))
    assert set(np.unique(p1)) == {0}


def test_allowed_mask_is_honoured_and_contradictions_are_errors():
    allowed = np.array([False, True, False, True])
    ids = sample_next(logits(), np.random.default_rng(2), allowed=allowed)
    assert set(np.unique(ids)) == {1, 3}
    with pytest.raises(OptionError, match="no allowed token"):
        sample_next(logits(2), np.random.default_rng(2), allowed=np.zeros(4, bool))


def test_softmax_rows_sum_to_one():
    s = softmax(np.random.default_rng(0).normal(size=(5, 7)) * 50)
    np.testing.assert_allclose(s.sum(1), 1.0)


def test_min_p_drops_tokens_below_a_share_of_the_best_and_is_a_flag_everywhere():
    from app.cli import build_parser

    logits = np.log(np.array([[0.5, 0.3, 0.15, 0.05]]))
    rng = np.random.default_rng(0)
    drawn = {int(sample_next(logits, rng, SamplingOptions(min_p=0.5))[0]) for _ in range(300)}
    assert drawn == {0, 1}  # 0.15 and 0.05 are below 0.5 * 0.5
    assert {int(sample_next(logits, rng, SamplingOptions())[0]) for _ in range(300)} == {0, 1, 2, 3}
    with pytest.raises(OptionError, match="min-p"):
        SamplingOptions(min_p=0.0)
    for domain in ("names", "music"):
        args = build_parser().parse_args([domain, "generate", "--min-p", "0.2"])
        assert args.min_p == 0.2

import numpy as np
import pytest

from app.core.config import from_dict
from app.core.modelconfig import ModelConfig, TrainConfig
from app.core.vocab import Vocabulary, one_hot, pad_sequences, shift_xy
from app.errors import AppError, DataError, OptionError


def test_vocabulary_json_round_trip(tmp_path):
    v = Vocabulary(("<pad>", "<bos>", "\n", "a", "b"), n_special=3, kind="chars")
    v.save(tmp_path / "vocab.json")
    w = Vocabulary.load(tmp_path / "vocab.json")
    assert w == v
    assert w.decode(w.encode(["a", "\n", "b"])) == ["a", "\n", "b"]
    assert w.id("b") == 4


def test_vocabulary_rejects_duplicates_and_unknown_tokens():
    with pytest.raises(DataError, match="duplicate"):
        Vocabulary(("a", "b", "a"))
    v = Vocabulary(("a", "b"))
    with pytest.raises(DataError, match="'z' is not in the vocabulary"):
        v.id("z")


def test_one_hot_layout_and_zero_row_for_minus_one():
    x = one_hot(np.array([[2, 0, -1]]), 3)
    assert x.shape == (1, 3, 3)
    np.testing.assert_array_equal(x[0], [[0, 0, 1], [1, 0, 0], [0, 0, 0]])


def test_shift_xy_is_the_course_layout_with_padding_weights():
    x, y, w = shift_xy([np.array([1, 5, 6, 2]), np.array([1, 7, 2])], pad_id=0)
    np.testing.assert_array_equal(x, [[1, 5, 6], [1, 7, 0]])
    np.testing.assert_array_equal(y, [[5, 6, 2], [7, 2, 0]])
    np.testing.assert_array_equal(w, [[1, 1, 1], [1, 1, 0]])
    # Y is X shifted by one step wherever both are real
    assert (x[:, 1:][w[:, :-1] * w[:, 1:] > 0] == y[:, :-1][w[:, :-1] * w[:, 1:] > 0]).all()


def test_pad_sequences_truncates_and_pads():
    out = pad_sequences([np.array([1, 2, 3]), np.array([4])], pad_id=9, length=2)
    np.testing.assert_array_equal(out, [[1, 2], [4, 9]])


def test_configs_validate_and_reject_unknown_options():
    with pytest.raises(OptionError, match="cell must be one of"):
        ModelConfig(cell="transformer")
    with pytest.raises(OptionError, match="dropout"):
        ModelConfig(dropout=1.0)
    with pytest.raises(OptionError, match="unknown option"):
        from_dict(TrainConfig, {"epochs": 3, "epoch": 4})
    assert from_dict(TrainConfig, {"epochs": 3}).epochs == 3
    assert issubclass(OptionError, AppError) and issubclass(AppError, ValueError)

import numpy as np
import pytest
from hypothesis import given, strategies as st

from app.errors import DataError
from app.names.codec import BOS_ID, EOS_ID, PAD_ID, NameCodec, read_names, split_names

from conftest import DINOS

CODEC = NameCodec.build(["abcdefghijklmnopqrstuvwxyz", "-' "])


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-' ", min_size=1, max_size=40))
def test_encode_decode_round_trip(name):
    ids = CODEC.encode(name)
    assert ids[0] == BOS_ID and ids[-1] == EOS_ID
    assert CODEC.decode(ids) == name


def test_special_tokens_have_fixed_low_indices():
    assert CODEC.vocab.tokens[:3] == ("<pad>", "<bos>", "\n")
    assert (PAD_ID, BOS_ID, EOS_ID) == (0, 1, 2)


def test_xy_layout_matches_the_course():
    x, y, w = CODEC.xy(["ab", "c"])
    a, b, c = (CODEC.vocab.id(ch) for ch in "abc")
    np.testing.assert_array_equal(x, [[BOS_ID, a, b], [BOS_ID, c, PAD_ID]])
    np.testing.assert_array_equal(y, [[a, b, EOS_ID], [c, EOS_ID, PAD_ID]])
    np.testing.assert_array_equal(w, [[1, 1, 1], [1, 1, 0]])


def test_unknown_character_error_names_it_and_lists_the_vocabulary():
    with pytest.raises(DataError) as e:
        CODEC.encode("ab9")
    assert "'9'" in str(e.value) and "abcdefghijklmnopqrstuvwxyz" in str(e.value)


def test_read_names_normalises_and_deduplicates(tmp_path):
    p = tmp_path / "n.txt"
    p.write_text("  Aa\nbb\n\nAA\nBb \ncc", encoding="utf-8")
    assert read_names(p) == ["aa", "bb", "cc"]
    assert read_names(p, lowercase=False) == ["Aa", "bb", "AA", "Bb", "cc"]


def test_dinos_file_deduplicates_to_1524():
    names = read_names(DINOS)
    assert len(names) == len(set(names)) == 1524
    assert all(n == n.lower() for n in names)


@pytest.mark.parametrize("content, match", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"  \n\n \n", "is empty"),
    (b"ab\x00cd\n", "looks binary"),
    (b"good\nbad\xff\xfe\n", "line 2 is not UTF-8"),
    (("x" * 100 + "\n").encode(), "no usable lines"),
])
def test_bad_names_files_get_clear_errors(tmp_path, content, match):
    p = tmp_path / "names.txt"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(DataError, match=match):
        read_names(p)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a folder"):
        read_names(tmp_path)


def test_split_is_deterministic_disjoint_and_complete():
    names = read_names(DINOS)
    tr1, va1 = split_names(names, 0.1, seed=0)
    tr2, va2 = split_names(names, 0.1, seed=0)
    tr3, va3 = split_names(names, 0.1, seed=1)
    assert (tr1, va1) == (tr2, va2) and va1 != va3
    assert not set(tr1) & set(va1) and set(tr1) | set(va1) == set(names)
    assert len(va1) == round(0.1 * len(names))


def test_split_requires_deduplicated_input():
    with pytest.raises(DataError, match="de-duplicated"):
        split_names(["a", "a", "b"])

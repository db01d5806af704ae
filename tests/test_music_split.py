"""The corpus split keeps a tune family (the same tune in several files or collections) on one side."""

import numpy as np

from app.music.corpus import FAMILY_RUN, _split, build_corpus, load_corpus, tune_families
from music_fixtures import melody_midi, write

RNG = np.random.default_rng(0)


def random_tune(n=40, lo=55, hi=80, rng=RNG):
    return [int(p) for p in rng.integers(lo, hi, n)]


def ids(pitches, holds=1):
    """Pitches -> token ids with a hold after each note-on (note-on id = pitch - 46 for range 48..)."""
    out = []
    for p in pitches:
        out += [p - 46] + [0] * holds
    return np.array(out, np.int32)


def test_shared_run_links_pieces_even_transposed():
    a = random_tune()
    b = [p + 3 for p in a[:FAMILY_RUN + 1]] + random_tune(10)  # a's first 25 notes, up a minor third
    c = random_tune()
    short = a[:FAMILY_RUN]  # 24 notes = 23 intervals: too short to be linked
    fam = tune_families([[ids(a)], [ids(b, holds=2)], [ids(c)], [ids(short)]])
    assert fam[0] == fam[1] == 0
    assert len({fam[0], fam[2], fam[3]}) == 3


def test_families_are_transitive_and_span_segments():
    a, b = random_tune(), random_tune()
    x = a[-30:] + random_tune(5)  # shares with a
    y = random_tune(5) + b[:30]   # shares with b
    fam = tune_families([[ids(a)], [ids(b)], [ids(x), ids(y)]])  # piece 2 has two segments: a link to each
    assert fam == [0, 0, 0]


def test_split_keeps_families_whole_and_is_deterministic():
    names = [f"p{i:02}" for i in range(30)]
    families = [i // 3 for i in range(30)]  # 10 families of 3
    val = _split(names, families, 0.2, seed=0)
    assert len(val) == 6
    for f in range(10):
        members = {n for n, g in zip(names, families) if g == f}
        assert members <= val or not members & val
    assert val == _split(names, families, 0.2, seed=0) and val != _split(names, families, 0.2, seed=5)
    assert _split(names, [0] * 30, 0.2, seed=0) == set()  # one family: nothing can be held out


def test_build_puts_copies_of_a_tune_on_one_side(tmp_path):
    src = tmp_path / "src"
    rng = np.random.default_rng(1)
    for k in range(12):
        tune = random_tune(32, rng=rng)
        for copy in range(2):  # each tune twice, the second transposed: "two collections"
            notes = [(p + 2 * copy, i * 0.5, i * 0.5 + 0.5) for i, p in enumerate(tune)]
            write(src, f"t{k:02}_{copy}.mid", melody_midi(notes))
    c = load_corpus(build_corpus([str(src)], tmp_path / "out", val_fraction=0.25, jobs=1, progress=False).out)
    val = {m["name"] for m in c.val_meta}
    train = {m["name"] for m in c.train_meta}
    assert len(val) == 6 and len(train) == 18
    for k in range(12):
        pair = {n for n in val | train if f"t{k:02}_" in n}
        assert len(pair) == 2 and (pair <= val or pair <= train)
    assert c.report["split"]["families"] == 12 and c.report["split"]["pieces_in_shared_families"] == 24

import numpy as np

from app.core.parallel import chunk_sizes, map_chunks


def draw(size, rng):
    return list(rng.integers(0, 1_000_000, size))


def test_chunks_cover_the_batch():
    assert chunk_sizes(5000, 2048) == [2048, 2048, 904]
    assert chunk_sizes(10, 2048) == [10]


def test_same_generator_same_result_whatever_the_number_of_workers():
    a = map_chunks(draw, 5000, np.random.default_rng(3), chunk=700, workers=1)
    b = map_chunks(draw, 5000, np.random.default_rng(3), chunk=700, workers=2)
    c = map_chunks(draw, 5000, np.random.default_rng(4), chunk=700, workers=2)
    assert len(a) == 5000 and a == b and a != c


def test_large_name_batches_are_reproducible(tiny_names_model):
    from app.names.generator import NameGenerator

    gen = NameGenerator.load(tiny_names_model)
    first = gen.sample(3000, np.random.default_rng(9), max_len=12)
    assert first == gen.sample(3000, np.random.default_rng(9), max_len=12)
    assert len(first) == 3000 and all(1 <= len(n) <= 12 for n in first)

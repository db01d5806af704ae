import numpy as np
import pytest

from app.errors import DataError
from app.music.metre import bar_grid, shift_metre, steps_per_bar


def test_steps_per_bar_common_metres():
    assert steps_per_bar(4, (4, 4)) == 16
    assert steps_per_bar(4, (3, 4)) == 12
    assert steps_per_bar(4, (6, 8)) == 12
    assert steps_per_bar(4, (2, 2)) == 16
    with pytest.raises(DataError):
        steps_per_bar(4, (0, 4))


def test_bar_grid_with_a_change_restarts_the_bar():
    bar, pos = bar_grid(40, 4, [(0, 3, 4), (18, 4, 4)])
    assert bar[:18].tolist() == [12] * 18 and bar[18:].tolist() == [16] * 22
    assert pos[:13].tolist() == list(range(12)) + [0]
    assert pos[18] == 0 and pos[34] == 0 and pos[35] == 1
    bar1, pos1 = bar_grid(5, 4, [(0, 6, 8)])
    assert np.array_equal(pos1, np.arange(5)) and set(bar1.tolist()) == {12}


def test_first_change_before_zero_gives_the_bar_phase():
    bar, pos = bar_grid(20, 4, [(-8, 3, 4)])  # a one-beat pickup in 3/4
    assert pos[:5].tolist() == [8, 9, 10, 11, 0] and set(bar.tolist()) == {12}


@pytest.mark.parametrize("start", [0, 1, 11, 12, 23, 24, 25, 40, 59])
def test_shift_metre_equals_the_whole_grid_cut_at_the_start(start):
    changes = [(-4, 3, 4), (20, 6, 8), (44, 4, 4)]
    whole_bar, whole_pos = bar_grid(60, 4, changes)
    shifted = shift_metre(changes, start, 4)
    assert shifted[0][0] <= 0 and all(s > 0 for s, _, _ in shifted[1:])
    bar, pos = bar_grid(60 - start, 4, shifted)
    assert np.array_equal(bar, whole_bar[start:]) and np.array_equal(pos, whole_pos[start:])
    assert shift_metre(changes, start, 4, length=3) == shifted[:1] + [c for c in shifted[1:] if c[0] < 3]

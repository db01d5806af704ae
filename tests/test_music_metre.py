import numpy as np
import pytest

from app.errors import DataError
from app.music.metre import bar_grid, steps_per_bar


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

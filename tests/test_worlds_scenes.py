"""Scenes of the digits world: layout, writers, determinism, split disjointness, modalities and bad arguments."""

import numpy as np
import pytest

from bindkit.worlds import DigitsWorld
from bindkit.worlds.scenes import GRID, sample_scenes


@pytest.fixture(scope="module")
def world():
    return DigitsWorld(seed=0)


@pytest.fixture(scope="module")
def test_scenes(world):
    return sample_scenes(world, "test", 6, seed=1, modalities=("image", "depth", "thermal"))


def test_layout_boxes_cells_writers(world, test_scenes):
    s, cell = test_scenes, world.image_size
    assert s.images.shape == (6, GRID * cell, GRID * cell, 3) and s.images.dtype == np.uint8
    assert s.depth.shape == s.thermal.shape == (6, GRID * cell, GRID * cell)
    for digits, boxes, writers in zip(s.digits, s.boxes, s.writers, strict=True):
        assert 2 <= len(digits) <= 4 and len(set(digits.tolist())) == len(digits)
        assert len(set(writers.tolist())) == len(writers)  # different writers
        assert set(writers.tolist()) <= set(world.writers("test").tolist())
        cells = {(int(b[0] // cell), int(b[1] // cell)) for b in boxes}
        assert len(cells) == len(boxes)  # one digit per cell: never overlapping
        for b in boxes:
            assert int(b[2] // cell) == int(b[0] // cell) or b[2] % cell == 0  # stays in its cell
            assert 0.3 * cell < b[3] - b[1] < 0.95 * cell  # a digit's height at the world's scale
    assert 0.02 < s.digit_area_share() < 0.15


def test_ink_lies_inside_the_boxes(test_scenes):
    """Every pixel where a scene differs from its empty page is inside a digit's box, and every box holds ink."""
    for img, page, boxes in zip(test_scenes.images, test_scenes.pages, test_scenes.boxes, strict=True):
        ink = np.abs(img.astype(int) - page.astype(int)).max(-1) > 12
        inside = np.zeros_like(ink)
        for x0, y0, x1, y1 in boxes:
            box = (slice(int(y0), int(np.ceil(y1))), slice(int(x0), int(np.ceil(x1))))
            inside[box] = True
            assert ink[box].mean() > 0.05  # the digit is there
        assert ink.sum() > 100 and not (ink & ~inside).any()


def test_seeded_and_disjoint_between_splits(world, test_scenes):
    again = sample_scenes(world, "test", 6, seed=1, modalities=("image", "depth", "thermal"))
    assert np.array_equal(again.images, test_scenes.images) and np.array_equal(again.depth, test_scenes.depth)
    other = sample_scenes(world, "test", 2, seed=2)
    assert not np.array_equal(other.images, test_scenes.images[:2])
    train = sample_scenes(world, "train", 4, seed=1, counts=(4,))
    assert all(len(d) == 4 for d in train.digits) and train.depth is None
    train_writers = set(np.concatenate(train.writers).tolist())
    assert not train_writers & set(np.concatenate(test_scenes.writers).tolist())


@pytest.mark.parametrize(
    "kwargs, match",
    [({"split": "val"}, "split"), ({"n": 0}, "positive"), ({"counts": (5,)}, "counts"), ({"counts": ()}, "counts"),
     ({"modalities": ("audio",)}, "modalities"), ({"seed": -1}, "seed")],
)  # fmt: skip
def test_bad_arguments(world, kwargs, match):
    args = {"split": "test", "n": 2, **kwargs}
    with pytest.raises(ValueError, match=match):
        sample_scenes(world, **args)

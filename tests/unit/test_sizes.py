"""Sizes from an aspect ratio: the area and the ratio kept, multiples of 8 within the model's range,
unknown ratios named with the choices."""

from __future__ import annotations

import pytest

from studio.errors import UnknownName
from studio.sizes import ASPECT_RATIOS, size_for_aspect


@pytest.mark.parametrize("ratio", list(ASPECT_RATIOS))
@pytest.mark.parametrize("area, low, high", [(512 * 512, 64, 2048), (1024 * 1024, 512, 2048), (64 * 64, 64, 256)])
def test_aspect_sizes_keep_the_area_and_the_ratio(ratio, area, low, high):
    width, height = size_for_aspect(ratio, area, low, high)
    w, h = ASPECT_RATIOS[ratio]
    assert width % 8 == 0 and height % 8 == 0 and low <= width <= high and low <= height <= high
    if low < width < high and low < height < high:  # not clamped
        assert abs(width * height / area - 1) < 0.1
        assert abs((width / height) / (w / h) - 1) < 0.08
    assert (width >= height) == (w >= h) or width == height


def test_aspect_examples_and_errors():
    assert size_for_aspect("1:1", 512 * 512, 64, 2048) == (512, 512)
    assert size_for_aspect("16:9", 1024 * 1024, 512, 2048) == (1368, 768)
    assert size_for_aspect("9:16", 1024 * 1024, 512, 2048) == (768, 1368)
    with pytest.raises(UnknownName, match="'5:4'.*1:1, 4:3"):
        size_for_aspect("5:4", 512 * 512, 64, 2048)

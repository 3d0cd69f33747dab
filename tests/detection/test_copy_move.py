"""Copy-move detection on real CT slices: a region cloned elsewhere in the slice is found at its shift (also
through JPEG), genuine slices and burned-in text are not flagged. scripts/eval_copy_move.py has the rates."""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from detection.ml.copy_move import find_copy_moves
from detection.ml.preprocessing import window


def _lung(hu: np.ndarray) -> np.ndarray:
    return np.rint(window(hu, "lung") * 255).astype(np.uint8)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("L"))


@pytest.mark.parametrize("quality", [None, 75])
def test_a_cloned_region_is_found_with_both_places(ct_volume, quality):
    slice_ = _lung(ct_volume[0][57])
    assert find_copy_moves(slice_) == []  # the genuine slice
    forged = slice_.copy()
    forged[300:350, 150:200] = slice_[200:250, 330:380]  # lung texture moved over another part of the lung
    if quality:
        forged = _jpeg(forged, quality)
    [clone] = find_copy_moves(forged)
    assert clone.shift == (100, -180)
    x0, y0, w0, h0 = clone.first
    x1, y1, w1, h1 = clone.second
    assert abs(x0 - 330) <= 6 and abs(y0 - 200) <= 6 and abs(x1 - 150) <= 6 and abs(y1 - 300) <= 6
    assert 38 <= w0 <= 56 and 38 <= h0 <= 56  # the 50 px clone, give or take its edge blocks


def test_repeated_letters_of_burned_in_text_are_not_a_clone(ct_volume):
    image = Image.fromarray(_lung(ct_volume[0][40]))
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf", 18)
    draw.text((10, 10), "2010-02-20 10:20:20", fill=255, font=font)
    draw.text((10, 480), "R  W 1500 L -600  R", fill=255, font=font)
    assert find_copy_moves(np.asarray(image)) == []


@pytest.mark.parametrize("image", [np.zeros((64, 64), np.uint8), np.full((512, 512), 200, np.uint8),
                                   np.zeros((20, 20), np.uint8)], ids=["black", "flat", "tiny"])
def test_an_image_without_texture_has_no_clone(image):
    assert find_copy_moves(image) == []  # a blank or solid claim image, e.g. a scanned form's background

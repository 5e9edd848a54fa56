"""Image loader: parity with the official helper's outputs, EXIF handling, in-memory inputs, sizes, bad input."""

import hashlib
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from bindkit.data import CLIP_MEAN, CLIP_STD, LoadError, load_images
from bindkit.data.common import center_crop_offsets


@pytest.fixture(scope="module")
def pre(fixtures_dir):
    root = fixtures_dir / "preprocessing"
    cases = json.loads((root / "cases.json").read_text())["cases"]
    images = {k: v for k, v in cases.items() if k.startswith("image.")}
    return root, images, load_file(root / "outputs.safetensors")


def test_parity_with_official_outputs(pre):
    root, images, ref = pre
    x = load_images([root / c["inputs"][0] for c in images.values()], exif_transpose=False)
    assert x.shape == (len(images), 3, 224, 224) and x.dtype == torch.float32
    for i, name in enumerate(images):
        assert (x[i] - ref[name][0]).abs().max() <= 1e-6, name


def test_decoded_pixels_match_the_official_decoder(pre):
    root, images, _ = pre
    for c in images.values():
        rgb = np.asarray(Image.open(root / c["inputs"][0]).convert("RGB"))
        assert hashlib.sha256(rgb.tobytes()).hexdigest() == c["info"]["decoded_rgb_sha256"]


def test_exif_orientation_is_applied_by_default(pre):
    root, images, ref = pre
    path = root / images["image.im07_exif_orient6"]["inputs"][0]
    upright = Image.open(path).transpose(
        Image.Transpose.ROTATE_270
    )  # orientation 6 = rotate 90 degrees clockwise
    assert upright.size == (320, 480)
    expected = load_images([upright], exif_transpose=False)
    assert torch.equal(load_images([path]), expected)
    assert not torch.allclose(load_images([path]), ref["image.im07_exif_orient6"])


def test_in_memory_inputs_match_the_path(pre):
    root, images, _ = pre
    path = root / images["image.im02_portrait_rgba"]["inputs"][0]
    data = path.read_bytes()
    rgba = np.asarray(Image.open(path))
    x = load_images([path, data, io.BytesIO(data), Image.open(path), rgba])
    for i in range(1, 5):
        assert torch.equal(x[i], x[0]), i


def test_small_size_uniform_colour_is_hand_computable():
    arr = np.zeros((30, 50, 3), np.uint8) + np.array([10, 128, 250], np.uint8)
    x = load_images([arr], size=64)
    assert x.shape == (1, 3, 64, 64)
    for c in range(3):
        expected = (arr[0, 0, c] / 255 - CLIP_MEAN[c]) / CLIP_STD[c]
        assert torch.allclose(x[0, c], torch.full((64, 64), expected, dtype=torch.float32), atol=1e-6)


def test_centre_crop_rounds_half_to_even():
    assert center_crop_offsets(373, 224, 224) == (74, 0)  # 74.5 -> 74 (the official tiny-gray case)
    assert center_crop_offsets(375, 224, 224) == (76, 0)  # 75.5 -> 76
    assert center_crop_offsets(224, 388, 224) == (0, 82)


def test_batch_errors_name_every_bad_item(pre, tmp_path):
    root, images, _ = pre
    good = root / images["image.im01_landscape_rgb"]["inputs"][0]
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.read_bytes()[:3000])
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    items = [good, tmp_path / "missing.jpg", empty, truncated, b"not an image", np.zeros((4, 4), np.float32)]
    with pytest.raises(LoadError) as e:
        load_images(items)
    msg = str(e.value)
    assert "5 of 6" in msg
    for needle in [
        "[1]",
        "file not found",
        "[2]",
        "0 bytes",
        "[3]",
        "truncated",
        "[4]",
        "not a recognised",
        "[5]",
        "uint8",
    ]:
        assert needle in msg, needle
    result = load_images(items, errors="skip")
    tensor, skipped = result
    assert tensor.shape == (1, 3, 224, 224) and [s.index for s in skipped] == [1, 2, 3, 4, 5]
    assert result.kept(len(items)) == [0]
    assert torch.equal(tensor[0], load_images([good])[0])

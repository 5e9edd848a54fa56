"""Thermal: single-channel infrared pictures through the 2-D patch stem."""

from __future__ import annotations

from bindkit.modalities.common import square_size
from bindkit.modalities.patch2d import Patch2dStem
from bindkit.modalities.spec import ModalitySpec
from bindkit.modalities.vision import IMAGE_EXT

THERMAL = ModalitySpec(
    name="thermal", encoder="thermal", stem=Patch2dStem, loader="bindkit.data.thermal:load_thermal",
    sizes=square_size, extensions=(".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"), detect=IMAGE_EXT,
    hints=("thermal", "infrared", "lwir"), fitter="bindkit.data.thermal:fit_normalization",
    view="bindkit.train.augment:geometry_view", step_aug="bindkit.train.augment:erase_step",
    thumbnail="bindkit.serve.thumbs:heat_map",
)  # fmt: skip

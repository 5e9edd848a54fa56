"""Depth: single-channel maps (disparity from metres, or arrays) through the 2-D patch stem."""

from __future__ import annotations

from bindkit.modalities.common import square_size
from bindkit.modalities.patch2d import Patch2dStem
from bindkit.modalities.spec import ModalitySpec
from bindkit.modalities.vision import IMAGE_EXT

DEPTH = ModalitySpec(
    name="depth", encoder="depth", stem=Patch2dStem, loader="bindkit.data.depth:load_depth", sizes=square_size,
    extensions=(".png", ".npy", ".npz", ".tif", ".tiff"), detect=IMAGE_EXT + (".npy", ".npz"),
    hints=("depth", "disparity"), sniff="bindkit.store.detect:is_depth_array",
    fitter="bindkit.data.depth:fit_normalization", view="bindkit.train.augment:geometry_view",
    step_aug="bindkit.train.augment:erase_step", thumbnail="bindkit.serve.thumbs:heat_map",
)  # fmt: skip

"""Readers for the paper's benchmarks as users have them on disk, and for any labelled folder or CSV.

Every reader returns an `EvalDataset`: items (file + crop box / time window / loader keywords), labels or captions,
class names and the names prompts are built from, the modality, and what was left out and why.
"""

from bindkit.evaluate.readers.audio import (
    read_audiocaps,
    read_audioset,
    read_clotho,
    read_esc50,
    read_vggsound,
)
from bindkit.evaluate.readers.base import EvalDataset, Item
from bindkit.evaluate.readers.depth import read_nyud, read_sund
from bindkit.evaluate.readers.generic import read_folder, read_labels_csv
from bindkit.evaluate.readers.imu import read_ego4d
from bindkit.evaluate.readers.thermal import read_llvip
from bindkit.evaluate.readers.video import read_msrvtt

__all__ = [
    "EvalDataset", "Item", "read_audiocaps", "read_audioset", "read_clotho", "read_ego4d", "read_esc50",
    "read_folder", "read_labels_csv", "read_llvip", "read_msrvtt", "read_nyud", "read_sund", "read_vggsound",
]  # fmt: skip

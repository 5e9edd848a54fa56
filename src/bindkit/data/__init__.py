"""Raw data -> model inputs for every modality (guide: docs/data.md).

Every batch loader takes a list of items (paths, bytes, file objects, or in-memory arrays/images/strings) and
returns one float32 (text: int64) tensor in the model's layout. A batch with bad items raises one `LoadError`
naming each of them; `errors="skip"` returns `LoadResult(tensor, skipped)` instead.
"""

from collections.abc import Callable
from typing import Any

from bindkit.data.audio import load_audio
from bindkit.data.dataset import (
    Batch,
    ModalityDataset,
    Sample,
    StreamingDataset,
    collate,
    get_loader,
    iter_files,
    list_files,
    load,
    loader_kwargs,
)
from bindkit.data.depth import load_depth
from bindkit.data.errors import LoadError, LoadResult, Skipped
from bindkit.data.images import CLIP_MEAN, CLIP_STD, load_images
from bindkit.data.imu import CHANNELS as IMU_CHANNELS
from bindkit.data.imu import load_imu
from bindkit.data.limits import Limits, get_limits, limits_scope, set_limits
from bindkit.data.text import get_tokenizer, tokenize
from bindkit.data.thermal import load_thermal
from bindkit.data.video import load_videos


def normalization_fitters() -> dict[str, Callable[[Any], dict[str, Any]]]:
    """Encoders whose mean/std are fitted to the data a model is trained on: encoder -> fit(batches) -> preprocess."""
    import bindkit.modalities as modalities

    return {s.encoder: s.call("fitter") for s in modalities.specs() if s.fitter is not None}


__all__ = [
    "load_images", "tokenize", "load_audio", "load_videos", "load_depth", "load_thermal", "load_imu",
    "LoadError", "LoadResult", "Skipped", "load", "get_loader", "loader_kwargs", "iter_files", "list_files",
    "ModalityDataset", "StreamingDataset", "Sample", "Batch", "collate", "get_tokenizer", "CLIP_MEAN", "CLIP_STD",
    "IMU_CHANNELS", "normalization_fitters", "Limits", "get_limits", "set_limits", "limits_scope",
]  # fmt: skip

"""Training: bind a modality to a frozen image(-text) space, or train an anchor CLIP-style, with one pair per step.

Example: `train(TrainConfig(pairs=[PairConfig(("vision", "depth"), "pairs.jsonl")], steps=1000))`; see
docs/training.md.
"""

from bindkit.train.config import TABLE9, LoRAConfig, PairConfig, TrainConfig, load_config, resolve
from bindkit.train.data import FilePairs, PairDataset, TensorPairs, read_manifest, write_manifest
from bindkit.train.engine import RunResult, Trainer, train
from bindkit.train.lora import apply_lora, load_lora, merge_lora, save_lora
from bindkit.train.loss import clip_loss, local_clip_loss
from bindkit.train.readers import audioset_pairs, ego4d_imu_pairs, llvip_pairs, sunrgbd_pairs

__all__ = [
    "TABLE9", "FilePairs", "LoRAConfig", "PairConfig", "PairDataset", "RunResult", "TensorPairs", "TrainConfig",
    "Trainer", "apply_lora", "audioset_pairs", "clip_loss", "ego4d_imu_pairs", "llvip_pairs", "load_lora",
    "load_config", "local_clip_loss", "merge_lora", "read_manifest", "resolve", "save_lora", "sunrgbd_pairs", "train",
    "write_manifest",
]  # fmt: skip

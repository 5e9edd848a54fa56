"""Synthetic worlds: seeded, six-modality data generated on the fly (see docs/worlds.md)."""

from .captions import class_prompts
from .digits import MODALITIES, DigitsWorld, Instances
from .files import to_files
from .inputs import to_model_inputs

__all__ = ["MODALITIES", "DigitsWorld", "Instances", "class_prompts", "to_files", "to_model_inputs"]

"""Synthetic worlds: seeded, six-modality data generated on the fly (see docs/worlds.md)."""

from .digits import MODALITIES, DigitsWorld, Instances

__all__ = ["MODALITIES", "DigitsWorld", "Instances"]

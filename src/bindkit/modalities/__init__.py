"""One home per modality: each file declares a stem and a `ModalitySpec`; `register` adds one (see docs/architecture.md).

The built-in kinds are registered here in the official order; a new modality is one more file that calls `register`.
"""

from bindkit.modalities.audio import AUDIO
from bindkit.modalities.depth import DEPTH
from bindkit.modalities.imu import IMU
from bindkit.modalities.spec import (
    STEMS,
    ModalitySpec,
    Ref,
    Stem,
    StemFactory,
    encoder_of,
    kinds,
    register,
    resolve,
    spec,
    specs,
    unregister,
)
from bindkit.modalities.text import TEXT
from bindkit.modalities.thermal import THERMAL
from bindkit.modalities.vision import IMAGE, VIDEO

for _spec in (IMAGE, VIDEO, TEXT, AUDIO, DEPTH, THERMAL, IMU):
    register(_spec)

__all__ = [
    "STEMS", "ModalitySpec", "Ref", "Stem", "StemFactory", "encoder_of", "kinds", "register",
    "resolve", "spec", "specs", "unregister",
]  # fmt: skip

"""Random streams: one generator per instance and named stream, from the instance's seed words.

An instance's seed words are (world seed, split code, sample seed, index). Each modality draws from its own stream,
so rendering one modality never shifts another's numbers, and instance i is the same whatever n is.
"""

import numpy as np

STREAMS = {"attributes": 0, "scene": 1, "image": 2, "video": 3, "thermal": 4, "depth": 5, "imu": 6, "audio": 7,
           "text": 8}  # fmt: skip


def rngs(entropy: np.ndarray, stream: str) -> list[np.random.Generator]:
    """One generator per instance (rows of entropy, (n, 4) non-negative ints) for a named stream."""
    k = STREAMS[stream]
    return [np.random.Generator(np.random.PCG64(np.random.SeedSequence([*map(int, e), k]))) for e in entropy]

"""The demo's sizes and schedules (full, quick and tiny presets) and its model config, `imagebind_demo`.

The demo model is ImageBind's architecture scaled to the digits world and a 2-core CPU: width 64, two blocks,
64-d embeddings, and short token sequences: 49 image/depth/thermal patches of 8 px at stride 4 on 32 px inputs
(overlapping patches: with stride 8 the encoders stayed at chance in our runs), 48 audio patches of 16 x 16 on
one 2-s 64-mel clip, 25 IMU windows of 16 samples, 24 text tokens (the longest world caption has 17).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from bindkit.config import ImageBindConfig
from bindkit.registry import list_configs, register

DEMO_CONFIG = "imagebind_demo"
BOUND = ("audio", "depth", "thermal", "imu")  # the modalities bound to the image space


def demo_config() -> ImageBindConfig:
    """The demo model: imagebind's six encoders, small enough to train all of them in minutes on 2 cores."""
    w, d, h = 64, 2, 4
    kw = dict(out_embed_dim=64, kernel_size=(2, 8, 8), audio_kernel_size=16, audio_stride=16, audio_num_mel_bins=64,
              audio_target_len=198, depth_kernel_size=8, thermal_kernel_size=8, imu_kernel_size=16,
              audio_drop_path=0.0, imu_drop_path=0.0)  # fmt: skip
    for m in ("vision", "text", "audio", "depth", "thermal", "imu"):
        kw |= {f"{m}_embed_dim": w, f"{m}_num_blocks": d, f"{m}_num_heads": h}
    cfg = ImageBindConfig.from_official_kwargs(kw, name=DEMO_CONFIG)
    enc = dict(cfg.encoders)
    for m in ("vision", "depth", "thermal"):
        stride = (2, 4, 4) if m == "vision" else (4, 4)
        enc[m] = dataclasses.replace(enc[m], input_shape=(enc[m].input_shape[0], 32, 32), stride=stride)
    enc["text"] = dataclasses.replace(enc["text"], input_shape=(24,))
    enc["imu"] = dataclasses.replace(enc["imu"], input_shape=(6, 400))
    return dataclasses.replace(cfg, encoders=enc)


def register_demo_config() -> None:
    """Add `imagebind_demo` to the registry (once), so training runs can name it."""
    if DEMO_CONFIG not in list_configs():
        register(DEMO_CONFIG)(demo_config)


@dataclass(frozen=True)
class Phase:
    """One training run: optimizer steps, global batch, peak LR, and per bound modality a temperature and a share
    of the steps (the engine's replication factor)."""

    steps: int
    batch_size: int
    lr: float
    weight_decay: float = 0.05
    warmup_steps: int = 20
    temperature: dict[str, float] = field(default_factory=dict)  # modality -> tau (default 0.1)
    share: dict[str, float] = field(default_factory=dict)  # modality -> replication (default 1.0)


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of the world and schedules of the three training runs."""

    name: str
    n_anchor: int  # train-split instances with image + caption (the anchor's pairs)
    n_train: int  # the first of them with every bound modality too (the binding pairs)
    n_test: int  # held-out instances (every modality, video included), written as files
    n_probe_pool: int  # train instances whose video is also rendered (few-shot pool)
    anchor: Phase
    bind: Phase  # (image, X) pairs, X in BOUND, against the frozen image encoder
    text_paired: Phase | None  # (text, X) pairs against the frozen text encoder: the comparison row (None: not run)
    shots: tuple[int, ...] = (1, 2, 4, 8)
    probe_seeds: tuple[int, ...] = (0, 1, 2)
    arithmetic_queries: int = 200
    # the applications stage (locate, detect, generate), opt-in with `bindkit demo --apps` until the full preset with
    # it has been timed end to end (issues 11 and 12)
    applications: bool = False
    scenes: int = 200  # held-out scenes the applications stage scores
    # the image-text anchor: False loads the shipped pretrained one frozen and only binds (the paper's setting,
    # `bindkit.demo.anchor`); True trains it from scratch with `anchor` (`bindkit demo --train-anchor`)
    train_anchor: bool = False
    # a pretrained anchor folder (`scripts/train_demo_anchor.py --out DIR`) to bind to instead of the shipped one
    anchor_dir: str | None = None


# Audio (held-out voices) and depth (relief under pose) learn slowest, thermal and IMU fastest: their shares of the
# binding steps differ (the engine's replication factors).
SHARE = {"audio": 2.0, "depth": 1.6, "thermal": 0.5, "imu": 0.5}


def _bind(steps: int, warmup: int) -> Phase:
    return Phase(steps=steps, batch_size=96, lr=4e-3, warmup_steps=warmup, share=SHARE)


# Measured on 2 cores (image-text anchor alone, image zero-shot on held-out writers): more distinct instances beat
# more epochs (3,000 -> 12,000 anchor instances at 500 steps: 62% -> 70%), batch 96 at lr 2e-3 beats batch 192 at
# 1e-3 per second of training, and 1,500 steps reach 94%. Binding: lr 4e-3 matches lr 2e-3 at half the steps, and
# 3,000 -> 6,000 bound instances lifts audio from 70% to 80% and depth from 76% to 87%.
FULL = DemoSettings(
    "full", n_anchor=12000, n_train=8000, n_test=600, n_probe_pool=200,
    anchor=Phase(steps=1500, batch_size=96, lr=2e-3, weight_decay=0.1, warmup_steps=50),
    bind=_bind(2500, 60), text_paired=_bind(2500, 60),
)  # fmt: skip
# Quick, bound to the shipped anchor, 4,000 bound instances: two runs of 1,200 steps (binding and the text-paired
# comparison) took 135 s on 2 cores (audio 68.7, depth 83.7, thermal 86.3, IMU 77.0); one binding run of 1,800 steps
# takes 111 s (audio 75.3, depth 84.7, thermal 92.7, IMU 82.0): the newcomer's 2 minutes go to the method itself.
QUICK = DemoSettings(
    "quick", n_anchor=6000, n_train=4000, n_test=300, n_probe_pool=100,
    anchor=Phase(steps=450, batch_size=96, lr=2e-3, weight_decay=0.1, warmup_steps=25),
    bind=_bind(1800, 25), text_paired=None, arithmetic_queries=100, scenes=100,
)  # fmt: skip
TINY = DemoSettings(
    "tiny", n_anchor=1000, n_train=400, n_test=200, n_probe_pool=80,
    anchor=Phase(steps=150, batch_size=96, lr=2e-3, weight_decay=0.1, warmup_steps=15),
    bind=_bind(200, 15), text_paired=_bind(200, 15), arithmetic_queries=50, train_anchor=True,
)  # fmt: skip
PRESETS = {s.name: s for s in (FULL, QUICK, TINY)}

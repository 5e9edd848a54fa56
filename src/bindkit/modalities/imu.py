"""IMU stem: 6-channel series cut into windows of `kernel` samples, one token per window."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bindkit.config import EncoderConfig
from bindkit.modalities.common import ConfigStem, TokenPrefix, check_float, check_shape, series_length
from bindkit.modalities.spec import ModalitySpec


class IMUStem(ConfigStem):
    """Linear(6*k -> D, no bias) on channel-major windows (feature = channel*k + t), LayerNorm (1e-5), CLS, pos."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__(cfg)
        self.k = cfg.kernel[0]
        self.proj = nn.Linear(cfg.input_shape[0] * self.k, cfg.width, bias=False)
        self.norm = nn.LayerNorm(cfg.width, eps=1e-5)
        self.prefix = TokenPrefix(cfg, resizable=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 6, T) -> (N, T/k + 1, D)."""
        N, C, T = x.shape
        win = x.reshape(N, C, T // self.k, self.k).permute(0, 2, 1, 3).reshape(N, T // self.k, C * self.k)
        return self.prefix(self.norm(F.linear(win, self.proj.weight)))  # (N, P+1, D)

    def validate(self, x: torch.Tensor) -> None:
        """Exactly [B, 6, length] with the configured length."""
        c, n = self.cfg.input_shape
        ok = x.ndim == 3 and x.shape[1] == c
        check_shape(x, self.cfg, f"[B,{c},{n}]", ok)
        if x.shape[2] != n:
            raise ValueError(f"imu: series length {x.shape[2]} differs from the config's {n} samples; resample it "
                             "(bindkit.data.load_imu does) to the config's length")  # fmt: skip
        check_float(x, self.cfg)


IMU = ModalitySpec(
    name="imu", encoder="imu", stem=IMUStem, loader="bindkit.data.imu:load_imu", sizes=series_length,
    extensions=(".csv", ".npy", ".npz"), hints=("imu",), sniff="bindkit.store.detect:is_imu_array",
    per_item=("sample_rate",), fitter="bindkit.data.imu:fit_normalization", thumbnail="bindkit.serve.thumbs:imu_plot",
)  # fmt: skip

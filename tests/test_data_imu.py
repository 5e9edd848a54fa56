"""IMU loader against hand computations: column mapping, channel order, resampling, padding, errors."""

import io

import numpy as np
import pytest
import torch

from bindkit.data import IMU_CHANNELS, LoadError, load_imu
from bindkit.data import imu as imu_mod

SLOPES = np.array([1.0, -2.0, 3.0, 0.5, -0.25, 4.0])  # per channel, in the order accel xyz, gyro xyz


def ramps(rate=200.0, seconds=6.0):
    """Linear ramps (exact under linear interpolation): value_c(t) = c + SLOPES[c] * t."""
    t = np.arange(int(rate * seconds)) / rate
    return t, np.arange(6) + SLOPES * t[:, None]  # (T,), (T, 6)


def expected(length=2000, duration=5.0, start=0.0):
    grid = start + np.arange(length) * (duration / length)
    return (np.arange(6)[:, None] + SLOPES[:, None] * grid).astype(np.float32)  # (6, length)


def csv_bytes(header, rows):
    lines = ([",".join(header)] if header else []) + [
        ",".join(f"{v:.10g}" if v == v else "" for v in r) for r in rows
    ]
    return "\n".join(lines).encode()


def test_channel_order_is_documented():
    assert IMU_CHANNELS == ("accel_x", "accel_y", "accel_z", "gyro_x", "gyro_y", "gyro_z")


def test_csv_with_header_resampled_to_400_hz():
    t, x = ramps()
    data = csv_bytes(["t", "ax", "ay", "az", "gx", "gy", "gz"], np.column_stack([t, x]))
    y = load_imu([data])
    assert y.shape == (1, 6, 2000) and y.dtype == torch.float32
    np.testing.assert_allclose(y[0].numpy(), expected(), rtol=1e-6, atol=1e-5)


def test_ego4d_layout_ms_times_and_gyro_first_columns():
    t, x = ramps()
    header = ["component_idx", "component_timestamp_ms", "canonical_timestamp_ms",
              "gyro_x", "gyro_y", "gyro_z", "accl_x", "accl_y", "accl_z"]  # fmt: skip
    rows = np.column_stack([np.zeros_like(t), t * 1000 + 7, t * 1000, x[:, 3:], x[:, :3]])
    rows[5, 2] = np.nan  # an empty canonical time: the row is dropped
    rows[9, 4] = np.nan  # a missing value: interpolated over
    y = load_imu([csv_bytes(header, rows)])
    np.testing.assert_allclose(y[0].numpy(), expected(), rtol=1e-6, atol=1e-5)
    swapped, repeated = rows.copy(), rows.copy()
    swapped[[20, 21]] = swapped[[21, 20]]  # one pair out of order
    repeated[31, 2] = repeated[30, 2]  # one time stamp repeated
    for bad, at in ((swapped, r"sample 2\d"), (repeated, r"sample 3\d")):
        with pytest.raises(LoadError, match=f"time stamps must increase: {at}"):
            load_imu([csv_bytes(header, bad)])


def test_headerless_csv_and_arrays_with_sample_rate():
    t, x = ramps(rate=100.0)
    six, seven = csv_bytes(None, x), csv_bytes(None, np.column_stack([t, x]))
    buf = io.BytesIO()
    np.save(buf, x.T.astype(np.float32))
    ys = load_imu([six, seven, buf.getvalue(), x, torch.from_numpy(x.T)], sample_rate=100.0)
    for y in ys:
        np.testing.assert_allclose(y.numpy(), expected(), rtol=1e-6, atol=1e-5)


def test_window_start_stretch_and_padding():
    t, x = ramps(rate=50.0, seconds=2.0)  # 100 samples, the last at 1.98 s
    y = load_imu([x], sample_rate=50.0, length=400, duration=4.0, start=0.505)[0].numpy()
    grid = 0.505 + np.arange(400) * 0.01  # no grid time falls on a sample time or on the 2.0 s boundary
    inside, held = grid < 1.98, (grid > 1.98) & (grid < 2.0)  # the last sample holds for one interval
    np.testing.assert_allclose(y[:, inside], expected(400, 4.0, 0.505)[:, inside], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(y[:, held], np.repeat(x[-1][:, None], held.sum(), 1), rtol=1e-6)
    assert held.sum() == 2 and (y[:, grid > 2.0] == 0).all()
    edge = load_imu([x], sample_rate=50.0, length=400, duration=4.0, start=0.505, pad="edge")[0].numpy()
    np.testing.assert_allclose(edge[:, -1], x[-1], rtol=1e-6)
    whole = load_imu([x], sample_rate=50.0, length=199, duration=None)[0].numpy()
    np.testing.assert_allclose(
        whole, (np.arange(6)[:, None] + SLOPES[:, None] * np.linspace(0, 1.98, 199)), atol=1e-5
    )


def test_normalisation_and_fit():
    t, x = ramps()
    raw = load_imu([x, x * 2], sample_rate=200.0)
    stats = imu_mod.fit_normalization(raw)
    flat = raw.double().permute(1, 0, 2).reshape(6, -1)
    np.testing.assert_allclose(stats["mean"], flat.mean(1).numpy(), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], flat.std(1, unbiased=False).numpy(), rtol=1e-9)
    normed = load_imu([x], sample_rate=200.0, **stats)
    m, s = torch.tensor(stats["mean"])[:, None], torch.tensor(stats["std"])[:, None]
    torch.testing.assert_close(normed[0], ((raw[0] - m) / s).float())


def test_bad_imu_inputs_are_named():
    t, x = ramps()
    items = [x, np.zeros((6, 6)), np.zeros((10, 5)), csv_bytes(["t", "ax", "ay"], np.zeros((3, 3))),
             csv_bytes(["t", "ax", "ay", "az", "gx", "gy", "gz"], np.zeros((1, 7))), b"", b"\xff\xfe\x00garbage"]  # fmt: skip
    with pytest.raises(LoadError) as e:
        load_imu(items, sample_rate=200.0)
    msg = str(e.value)
    for needle in [
        "6 of 7",
        "ambiguous",
        "[T, 6] or [6, T]",
        "lacks channels",
        "at least 2 samples",
        "0 bytes",
        "[6]",
    ]:
        assert needle in msg, needle
    y, skipped = load_imu(items, sample_rate=200.0, errors="skip")
    assert y.shape == (1, 6, 2000) and [s.index for s in skipped] == [1, 2, 3, 4, 5, 6]
    with pytest.raises(LoadError, match="pass sample_rate"):
        load_imu([x])

"""DataLoader datasets: streaming order and laziness, worker sharding, skipped items, config-derived sizes."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from bindkit.data import (
    LoadError,
    ModalityDataset,
    StreamingDataset,
    collate,
    list_files,
    load,
    load_images,
    load_imu,
    tokenize,
)
from bindkit.registry import get_config


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(7):
        sub = tmp_path / ("a" if i < 4 else "b")
        sub.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40 + i, 50, 3), dtype=np.uint8)).save(sub / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    return tmp_path


def test_folder_streams_in_order_through_a_dataloader(folder):
    files = list_files(folder, "image")
    assert [f.name for f in files] == [f"{i}.png" for i in range(7)]
    loader = DataLoader(StreamingDataset(folder, "image", size=32), batch_size=3, collate_fn=collate)
    batches = list(loader)
    assert [len(b.keys) for b in batches] == [3, 3, 1]
    keys = [k for b in batches for k in b.keys]
    assert keys == [str(f) for f in files]
    torch.testing.assert_close(
        torch.cat([b.inputs for b in batches]), load_images(files, size=32), rtol=0, atol=0
    )


def test_streaming_is_lazy():
    pulled = []

    def source():
        for i in range(1000):
            pulled.append(i)
            yield np.full((8, 8), i % 256, np.uint8)

    it = iter(DataLoader(StreamingDataset(source, "thermal", size=8), batch_size=4, collate_fn=collate))
    first = next(it)
    assert first.inputs.shape == (4, 1, 8, 8) and len(pulled) <= 5  # only what the first batch needed


def test_workers_shard_without_repeats():
    items = [np.full((50, 6), i, np.float32) for i in range(10)]
    ds = StreamingDataset(items, "imu", sample_rate=10.0, length=16, duration=None)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate)
    seen = sorted(int(b.inputs[j, 0, 0]) for b in loader for j in range(len(b.keys)))
    assert seen == list(range(10))
    bad = StreamingDataset([*items[:3], np.zeros((5, 5))], "imu", sample_rate=10.0, length=16, duration=None)
    with pytest.raises(LoadError, match=r"\[3\] <ndarray \(5, 5\) float64>: IMU arrays must be"):
        list(DataLoader(bad, batch_size=2, num_workers=2, collate_fn=collate))


def test_bad_items_are_reported_not_dropped(folder):
    (folder / "b" / "9.png").write_bytes(b"")
    batches = list(
        DataLoader(
            StreamingDataset(folder, "image", errors="skip", size=32), batch_size=4, collate_fn=collate
        )
    )
    skipped = [s for b in batches for s in b.skipped]
    assert len(skipped) == 1 and skipped[0][0].endswith("9.png") and "0 bytes" in skipped[0][1]
    assert sum(len(b.keys) for b in batches) == 7
    with pytest.raises(LoadError, match="9.png"):
        list(DataLoader(StreamingDataset(folder, "image", size=32), batch_size=4, collate_fn=collate))


def test_map_style_dataset_for_text():
    ds = ModalityDataset(["a dog", "a cat", 5], "text", errors="skip", context_length=16)
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch.keys == ["0", "1"] and batch.skipped == [("2", "not a string (int)")]
    assert torch.equal(batch.inputs, tokenize(["a dog", "a cat"], context_length=16))


def test_config_sets_sizes_and_fitted_constants():
    cfg = get_config("imagebind_tiny")
    img = np.zeros((30, 40, 3), np.uint8)
    assert load("image", [img], cfg).shape == (1, *cfg.encoders["vision"].input_shape)
    assert load("text", ["hi"], cfg).shape == (1, *cfg.encoders["text"].input_shape)
    assert load("thermal", [img[:, :, 0]], cfg).shape == (1, *cfg.encoders["thermal"].input_shape)
    imu = np.random.default_rng(0).normal(size=(1000, 6))
    raw = load("imu", [imu], cfg, sample_rate=200.0)
    assert raw.shape == (1, *cfg.encoders["imu"].input_shape)
    stats = {"mean": [1.0] * 6, "std": [2.0] * 6}
    fitted = cfg.replace_encoder("imu", preprocess={**stats, "fitted_on": "unit test"})
    torch.testing.assert_close(load("imu", [imu], fitted, sample_rate=200.0), (raw - 1.0) / 2.0)
    torch.testing.assert_close(raw, load_imu([imu], sample_rate=200.0, length=400))


def test_folder_to_embeddings_with_the_model(folder):
    from bindkit import ImageBind

    torch.manual_seed(0)
    model = ImageBind(get_config("imagebind_tiny").select(["vision"])).eval()
    ds = StreamingDataset(folder, "image", config=model.config, errors="skip")
    keys, emb = [], []
    for batch in DataLoader(ds, batch_size=4, collate_fn=collate):
        keys += batch.keys
        emb.append(model.encode({"image": batch.inputs})["image"])
    emb = torch.cat(emb)
    assert len(keys) == 7 and emb.shape == (7, model.config.out_dim)
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(7))
    direct = model.encode({"image": load("image", list_files(folder, "image"), model.config)})["image"]
    torch.testing.assert_close(emb, direct, rtol=1e-5, atol=1e-5)


def test_training_search_and_load_cut_audio_the_same_way_for_small_configs():
    """A config with fewer fbank frames than the official 204 gets clips of exactly that many frames everywhere."""
    from bindkit.data import load
    from bindkit.store.inputs import loader_call
    from bindkit.train.sources import load_side

    cfg = get_config("imagebind_tiny")
    enc = cfg.encoders["audio"]
    t = np.arange(16000 * 3) / 16000
    wave = (np.sin(2 * np.pi * 440 * t) * np.linspace(0, 1, t.size)).astype(np.float32)[None]  # (1, N)
    via_load = load("audio", [(wave, 16000)], config=cfg)
    fn, kw = loader_call("audio", enc)
    via_store = fn([(wave, 16000)], **kw)
    via_train = load_side(enc, [(wave, 16000)], [{}], [None], {})
    assert via_load.shape[-1] == enc.input_shape[-1] and kw["clip_duration"] < 2.0
    assert torch.equal(via_load, via_store) and torch.equal(via_load, via_train)
    # Not the official 2 s clip cropped to the first 104 frames; the official sizes keep the official 2 s.
    assert not torch.equal(via_load, load("audio", [(wave, 16000)], config=cfg, clip_duration=2.0))
    huge = get_config("imagebind_huge").encoders["audio"]
    assert loader_call("audio", huge)[1]["clip_duration"] == 2.0

"""The modality table and the behaviour fields of `EncoderConfig`: old configs read the same, the table reproduces
the rules the code had before it (candidates, hints, loaders, sizes), and every stem follows the `Stem` protocol."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
import torch

from bindkit import EncoderConfig, ImageBind, ImageBindConfig, get_config, list_configs, modalities
from bindkit.data import get_loader, load_audio, load_images, load_imu, load_videos, loader_kwargs, tokenize
from bindkit.store.detect import candidates, hints

OLD_FIELDS = {"modality", "width", "depth", "heads", "out_dim", "mlp_ratio", "drop_path", "bias_kv", "pre_ln",
              "head_dropout", "scale", "learnable_scale", "input_shape", "kernel", "stride", "vocab_size",
              "preprocess"}  # fmt: skip
# sha256 (first 16 hex) of json.dumps(get_config(name).to_dict(), sort_keys=True), computed with the code before the
# behaviour fields existed: the store names its tables with a hash of this JSON, so it must not change.
OLD_CONFIG_HASHES = {"imagebind_huge": "caa3003e7632c3e9", "imagebind_small": "f93e945d478dc4f9",
                     "imagebind_test": "61434bcd794c0a9a", "imagebind_tiny": "2868fb25da0de9f1"}  # fmt: skip


@pytest.mark.parametrize("name", list_configs())
def test_saved_configs_are_unchanged_and_round_trip(name):
    cfg = get_config(name)
    d = cfg.to_dict()
    assert all(set(e) == OLD_FIELDS for e in d["encoders"].values())  # the built-ins imply their behaviour
    assert hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16] == OLD_CONFIG_HASHES[name]
    assert ImageBindConfig.from_dict(json.loads(json.dumps(d))) == cfg


def test_old_configs_infer_behaviour_from_the_modality():
    d = get_config("imagebind_test").to_dict()  # what config.json held before the fields existed
    cfg = ImageBindConfig.from_dict(d)
    text, vision, imu, audio = (cfg.encoders[m] for m in ("text", "vision", "imu", "audio"))
    assert (text.causal, text.pool, text.grid_rule, text.cls_token) == (True, "eot", "sequence", False)
    assert (vision.grid_rule, imu.grid_rule, audio.grid_rule) == ("clip", "window", "patch")
    assert not any(c.causal for m, c in cfg.encoders.items() if m != "text")
    assert all(c.pool == "cls" and c.cls_token for m, c in cfg.encoders.items() if m != "text")


def test_behaviour_fields_drive_the_model_not_names():
    cfg = get_config("imagebind_test")
    # Hand counts: 77 text tokens; vision (224/14)^2 patches (2 frames, one temporal step) + CLS = 257; audio 12x19 + CLS;
    # depth (224/16)^2 + CLS; IMU 2000/8 windows + CLS.
    want = {"vision": 257, "text": 77, "audio": 229, "depth": 197, "thermal": 197, "imu": 251}
    assert {m: c.num_tokens for m, c in cfg.encoders.items()} == want
    bidir = dataclasses.replace(cfg.encoders["text"], causal=False)
    assert bidir.to_dict()["causal"] is False  # a changed behaviour is written out
    assert EncoderConfig.from_dict(bidir.to_dict()) == bidir
    torch.manual_seed(0)
    model = ImageBind(dataclasses.replace(cfg, encoders={"text": bidir}))
    assert not any(blk.attn.causal for blk in model.encoders["text"].trunk.blocks)
    with pytest.raises(ValueError, match="grid_rule"):
        dataclasses.replace(cfg.encoders["depth"], grid_rule="spiral")
    with pytest.raises(ValueError, match="cls_token"):
        dataclasses.replace(cfg.encoders["depth"], cls_token=False)


def test_every_stem_follows_the_protocol():
    cfg = get_config("imagebind_test")
    model = ImageBind(cfg)
    for m, enc in model.encoders.items():
        assert enc.stem.grid == cfg.encoders[m].grid
        assert callable(enc.stem.validate) and modalities.STEMS[m] is type(enc.stem)


def test_table_reproduces_the_old_detection_rules():
    image = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
    video = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")
    old = {**{e: ("image", "depth", "thermal") for e in image}, **{e: ("video", "audio") for e in video},
           **{e: ("audio",) for e in (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a")}, ".txt": ("text",),
           ".csv": ("imu",), ".npy": ("depth", "imu"), ".npz": ("depth", "imu")}  # fmt: skip
    assert candidates() == old
    assert hints()["lwir"] == "thermal" and hints()["disparity"] == "depth" and hints()["captions"] == "text"
    assert modalities.kinds() == ("image", "video", "text", "audio", "depth", "thermal", "imu")


def test_one_loader_lookup_with_the_old_sizes():
    tiny = get_config("imagebind_tiny").encoders
    assert get_loader("vision") is load_images and get_loader("image") is load_images
    assert (
        get_loader("video") is load_videos
        and get_loader("text") is tokenize
        and get_loader("imu") is load_imu
    )
    assert get_loader("audio") is load_audio
    assert loader_kwargs("video", tiny["vision"]) == {"size": 64, "frames_per_clip": 2}
    assert loader_kwargs("text", tiny["text"]) == {"context_length": 32}
    assert loader_kwargs("imu", tiny["imu"]) == {"length": 400}
    kw = loader_kwargs("audio", tiny["audio"])  # 104 frames: 25 ms + 103 x 10 ms hops, plus a quarter sample
    assert kw["num_mel_bins"] == 64 and kw["target_length"] == 104
    assert kw["clip_duration"] == pytest.approx(0.025 + 1.03 + 0.25 / 16000)
    with pytest.raises(ValueError, match="unknown modality 'smell'"):
        get_loader("smell")


def test_register_refuses_taken_names():
    with pytest.raises(ValueError, match="already registered"):
        modalities.register(dataclasses.replace(modalities.spec("imu"), name="imu2", aliases=("video",)))
    assert "imu2" not in modalities.kinds()

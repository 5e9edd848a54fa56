"""`bindkit train` and `bindkit eval` from the command line, on tiny fabricated files."""

import json

import numpy as np
from PIL import Image

from _train_utils import image_depth_files
from bindkit.cli import main


def test_train_from_a_config_file(tmp_path, capsys):
    image_depth_files(tmp_path, 16)
    cfg = {"model": "imagebind_tiny", "pairs": [{"modalities": ["vision", "depth"], "data": "pairs.jsonl",
           "batch_size": 8, "replication": 1.0}], "steps": 2, "warmup_steps": 1, "checkpoint_every": 100}  # fmt: skip
    (tmp_path / "train.json").write_text(json.dumps(cfg))
    main(["train", "--config", str(tmp_path / "train.json"), "--run-dir", str(tmp_path / "run"), "--no-progress",
          "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    out = capsys.readouterr().out
    assert "step 2/2" in out
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len([json.loads(line) for line in lines]) >= 2


def test_eval_on_a_labelled_folder(tmp_path):
    from bindkit import ImageBind, get_config, save_model

    for label in ("cat", "dog"):
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(
                tmp_path / "data" / label / f"{i}.png"
            )
    save_model(ImageBind(get_config("imagebind_tiny").select(["vision", "text"])), tmp_path / "model")
    main(["eval", "--task", "folder", "--root", str(tmp_path / "data"), "--model", str(tmp_path / "model"),
          "--out", str(tmp_path / "res.json"), "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    res = json.loads((tmp_path / "res.json").read_text())
    text = json.dumps(res)
    assert '"items": 6' in text and '"classes": 2' in text and '"n": 6' in text

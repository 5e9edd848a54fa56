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


def test_eval_flags_come_from_eval_config_fields():
    """Every EvalConfig field meant for the command line is one flag; parsed flags rebuild the config."""
    import argparse
    import dataclasses
    from pathlib import Path

    from bindkit.cli import COMMANDS, build_parser
    from bindkit.evaluate import EvalConfig
    from bindkit.flags import from_flags

    sub = argparse.ArgumentParser()
    next(add for name, _, add, _ in COMMANDS if name == "eval")(sub)
    dests = {a.dest for a in sub._actions if a.dest != "help"}
    ap = build_parser()
    fields = {f.name for f in dataclasses.fields(EvalConfig) if f.metadata.get("cli", True)}
    assert dests == fields
    a = ap.parse_args(["eval", "--task", "csv-pair", "--root", "q.csv", "--root", "g.csv", "--model", "m",
                       "--modality", "audio", "--modality", "depth", "--option", "csv-pair.split=test",
                       "--shots", "1", "2", "--no-cache", "--dtype", "bf16", "--fusion-weights", "0.5", "0.5"])  # fmt: skip
    cfg = from_flags(EvalConfig, a)
    assert cfg.tasks == ["csv-pair"] and cfg.root == [Path("q.csv"), Path("g.csv")] and cfg.model == "m"
    assert cfg.modality == ["audio", "depth"] and cfg.options == {"csv-pair": {"split": "test"}}
    assert list(cfg.shots) == [1, 2] and cfg.cache is False and cfg.dtype == "bf16"
    assert list(cfg.fusion_weights) == [0.5, 0.5] and cfg.out == Path("eval_results.json")
    one = from_flags(EvalConfig, ap.parse_args(["eval", "--task", "folder", "--root", "d", "--model", "m"]))
    assert one.root == Path("d") and one.modality is None and one.options == {} and one.cache is True


def test_a_stopped_demo_exits_with_its_message(monkeypatch):
    import pytest

    from bindkit.demo import run as demo_run

    def stopped(**kw):
        assert kw["stop"] is not None  # the command hands the library its SIGTERM event
        raise demo_run.DemoStopped("stopped during stage 'bind' at step 3/500")

    monkeypatch.setattr(demo_run, "run_demo", stopped)
    with pytest.raises(SystemExit, match="bindkit demo: stopped during stage 'bind'"):
        main(["demo", "--quick", "--no-progress"])

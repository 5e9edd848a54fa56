"""`bindkit demo` end to end on its smallest preset: run directory, report tables, `latest`, saved model."""

import json

import pytest
import torch

import bindkit
from bindkit.demo.run import run_demo
from bindkit.demo.settings import PRESETS


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return run_demo(run_root=tmp_path_factory.mktemp("runs"), settings=PRESETS["tiny"], progress=False)


def test_run_directory_layout_and_latest(demo):
    run = demo.run_dir
    assert (run.parent / "latest").resolve() == run.resolve()
    for name in ("report.md", "report.json", "test/manifest.jsonl", "model/config.json"):
        assert (run / name).is_file(), name
    assert len(list((run / "plots").glob("*.png"))) >= 3
    rows = [json.loads(line) for line in (run / "test" / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == demo.report["settings"]["n_test"]


def test_report_holds_every_table(demo):
    r, md = demo.report, (demo.run_dir / "report.md").read_text()
    for m in ("image", "video", "audio", "depth", "thermal", "imu"):
        assert 0 <= r["zero_shot"][m]["emergent"]["top1"] <= 100 and f"| {m} |" in md
    for m in ("audio", "depth", "thermal", "imu"):
        assert "text_paired" in r["zero_shot"][m]
    assert not r["retrieval"]["audio->depth"]["trained_together"] and "audio->depth" in md
    assert set(r["few_shot"]["audio"]) >= {"k=1", "k=2", "k=4", "k=8"}
    assert "image+audio" in r["arithmetic"]


def test_saved_model_reloads_and_reproduces_embeddings(demo):
    model = bindkit.load_model(demo.model_dir)
    assert set(model.encoders) == set(bindkit.MODALITIES)
    assert "mean" in model.config.encoders["depth"].preprocess  # fitted constants travel with the weights
    x = torch.randn(2, *model.config.encoders["depth"].input_shape)
    assert model.encode({"depth": x})["depth"].shape == (2, model.config.out_dim)

"""The thin CLI for core jobs: example, configs, convert both ways."""

import torch

from bindkit.cli import main


def test_example_runs(capsys):
    main(["example", "--batch", "1"])
    out = capsys.readouterr().out
    for m in ("vision", "text", "audio", "depth", "thermal", "imu"):
        assert f"  {m}" in out


def test_configs_lists_registry(capsys):
    main(["configs"])
    assert "imagebind_huge" in capsys.readouterr().out.split()


def test_convert_round_trip(fixtures_dir, tmp_path, capsys):
    import json

    from bindkit.registry import _REGISTRY  # the fixture's config is registered as imagebind_test

    ckpt = fixtures_dir / "model" / "checkpoint.pth"
    kwargs = json.loads((fixtures_dir / "model" / "config.json").read_text())["kwargs"]
    assert (
        _REGISTRY["imagebind_test"]().to_dict()["encoders"]
        == __import__("bindkit").ImageBindConfig.from_official_kwargs(kwargs).to_dict()["encoders"]
    )
    main(["convert", str(ckpt), str(tmp_path / "folder"), "--config", "imagebind_test"])
    main(["convert", str(tmp_path / "folder"), str(tmp_path / "back.pth")])
    a, b = torch.load(ckpt, weights_only=True), torch.load(tmp_path / "back.pth", weights_only=True)
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)

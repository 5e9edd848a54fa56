"""Errors a person can read: `bindkit` prints one line and exits non-zero for expected errors (through a real
subprocess), `--debug` shows the traceback; and the CLI defects of issue 16 (convert round trips, configs, search
arguments, eval's ambiguous pictures, resuming with another cache folder)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bindkit.cli import main


def bindkit(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bindkit", *args], capture_output=True, text=True, timeout=120,
                          **kw)  # fmt: skip


def test_expected_errors_are_one_line(tmp_path, capsys):
    r = bindkit("serve", "--host", "0.0.0.0", "--model", str(tmp_path / "none"))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.startswith("bindkit: error: binding to 0.0.0.0") and len(r.stderr.splitlines()) == 1, (
        r.stderr
    )
    r = bindkit("--debug", "serve", "--host", "0.0.0.0")
    assert r.returncode == 1 and "Traceback" in r.stderr and "check_binding" in r.stderr
    missing = tmp_path / "missing"
    with pytest.raises(FileNotFoundError, match="no store there"):  # --debug: the exception itself
        main(["search", "--store", str(missing), "--model", str(tmp_path / "m"), "--text", "x", "--debug"])
    assert not missing.exists()
    with pytest.raises(SystemExit) as e:
        main(["search", "--store", str(missing), "--model", str(tmp_path / "m"), "--text", "x", "-k", "0"])
    assert e.value.code == 2 and "-k: must be at least 1" in capsys.readouterr().err


def test_configs_lists_the_demo_and_survives_a_closed_pipe():
    out = bindkit("configs").stdout.split()
    assert "imagebind_demo" in out and "imagebind_huge" in out
    proc = subprocess.Popen([sys.executable, "-m", "bindkit", "configs", "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first line is written, as with `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 141 and "Traceback" not in err and "BrokenPipe" not in err, err
    r = bindkit("example", "--config", "nope")  # an unknown name lists every config, the lazily registered demo's too
    assert r.returncode == 1 and "unknown config 'nope'" in r.stderr and "imagebind_demo" in r.stderr, r.stderr


def test_missing_store_and_offline_download(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        main(["search", "--store", str(tmp_path / "nope"), "--model", str(tmp_path), "--text", "x"])
    assert e.value.code == 1 and not (tmp_path / "nope").exists()
    assert capsys.readouterr().err.startswith(f"bindkit: error: {tmp_path / 'nope'}: no store there")

    def offline(*a, **kw):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(SystemExit) as e:
        main(["download", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith("bindkit: error: ") and "name resolution" in err, err
    assert len(err.splitlines()) == 1


def test_convert_round_trips_a_bindkit_model(tmp_path, capsys):
    """demo-size model folder -> .pth (into a new folder) -> folder: same weights and config; a bare .pth of it
    needs --config, given as the folder's config.json."""
    import bindkit
    from bindkit.demo.settings import demo_config

    torch.manual_seed(0)
    src = bindkit.save_model(bindkit.ImageBind(demo_config()), tmp_path / "model")
    main(["convert", str(src), str(tmp_path / "out" / "deep" / "m.pth")])
    main(["convert", str(tmp_path / "out" / "deep" / "m.pth"), str(tmp_path / "back")])
    a = bindkit.load_model(src).state_dict()
    b = bindkit.load_model(tmp_path / "back").state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((src / "config.json").read_text()) == json.loads(
        (tmp_path / "back/config.json").read_text()
    )
    bare = tmp_path / "bare.pth"
    bare.write_bytes((tmp_path / "out" / "deep" / "m.pth").read_bytes())
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["convert", str(bare), str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert "does not hold a imagebind_huge model" in err and "--config" in err and len(err.splitlines()) == 1
    main(["convert", str(bare), str(tmp_path / "y"), "--config", str(src / "config.json")])
    c = bindkit.load_model(tmp_path / "y").state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_search_weights_take_several_values(tmp_path_factory, capsys):
    from store_fixtures import shared_world

    w = shared_world(tmp_path_factory)
    base = ["search", "--store", str(w["db"]), "--model", str(w["model_dir"]), "--text", "a", "--text", "b"]
    main([*base, "--weight", "1", "0.5", "-k", "2"])
    one = capsys.readouterr().out
    main([*base, "--weight", "1", "--weight", "0.5", "-k", "2"])
    assert capsys.readouterr().out == one and len(one.splitlines()) == 2
    with pytest.raises(SystemExit):
        main([*base, "--weight", "1"])
    assert "--weight has 1 values for 2 queries" in capsys.readouterr().err


def test_eval_refuses_ambiguous_pictures(tmp_path, capsys):
    """A CSV of 16-bit single-channel PNGs (depth or thermal?) is refused without --modality, as embed does."""
    from bindkit.evaluate.readers.generic import guess_modality

    rows = ["path,label"]
    for i in range(4):
        p = tmp_path / f"d{i}.png"
        Image.fromarray(np.full((16, 16), 1000 * (i + 1), np.uint16)).save(p)
        rows.append(f"{p.name},{i % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match="ambiguous: .*d0.png is a single-channel I;16 picture"):
        guess_modality(sorted(tmp_path.glob("*.png")))
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "rgb.png")
    assert guess_modality([tmp_path / "rgb.png"]) == "vision"


def test_train_resume_accepts_another_cache_dir(tmp_path, capsys):
    from _train_utils import image_depth_files

    image_depth_files(tmp_path, 16)
    cfg = {"model": "imagebind_tiny", "pairs": [{"modalities": ["vision", "depth"], "data": "pairs.jsonl",
           "batch_size": 8, "replication": 1.0}], "steps": 2, "warmup_steps": 1, "checkpoint_every": 1}  # fmt: skip
    (tmp_path / "train.json").write_text(json.dumps(cfg))
    common = [
        "train",
        "--config",
        str(tmp_path / "train.json"),
        "--run-dir",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    main([*common, "--stop-after", "1", "--cache-dir", str(tmp_path / "cache-a")])
    main([*common, "--resume", "--cache-dir", str(tmp_path / "cache-b")])
    assert "step 2/2" in capsys.readouterr().out
    assert Path(tmp_path / "run" / "metrics.jsonl").is_file()

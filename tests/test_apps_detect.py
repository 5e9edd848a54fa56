"""The swappable-classifier detector: the swap, training/resume/save/load in a run directory, bad input."""

import json

import numpy as np
import pytest
import torch

from bindkit.apps.detect import Detector, box_iou
from bindkit.apps.detect_train import DetectorTrainConfig, load_detector, patch_targets, train_detector
from bindkit.model import ImageBind
from bindkit.registry import get_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")
D, H = 128, 7  # the tiny config's joint width; a 7 x 7 patch grid (stride 8, 8-px patches: 64 px)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return ImageBind(get_config("imagebind_tiny").select(["vision"])).eval()


def synthetic(n: int, classes: torch.Tensor, seed: int = 0):
    """Dense maps whose object patches carry their class row (plus noise), one 3 x 3-patch object per map."""
    g = torch.Generator().manual_seed(seed)
    dense = torch.nn.functional.normalize(torch.randn(n, H, H, D, generator=g), dim=-1)
    boxes, labels = [], []
    for i in range(n):
        r, c = (int(v) for v in torch.randint(0, H - 3, (2,), generator=g))
        k = int(torch.randint(0, 3, (1,), generator=g))
        noisy = classes[k] + 0.3 * dense[i, r : r + 3, c : c + 3]
        dense[i, r : r + 3, c : c + 3] = torch.nn.functional.normalize(noisy, dim=-1)
        boxes.append(torch.tensor([[c * 8.0, r * 8.0, c * 8.0 + 24, r * 8.0 + 24]]))
        labels.append(torch.tensor([k]))
    return dense, boxes, labels


def test_swap_changes_only_the_classifier_rows():
    text = torch.nn.functional.normalize(torch.randn(3, D), dim=-1)
    det = Detector(D, text, hidden=16, stride=8, patch=8).eval()
    audio = torch.randn(3, D)
    swapped = det.with_classes(audio)
    a, b = det.state_dict(), swapped.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        if k == "classes":
            torch.testing.assert_close(b[k], torch.nn.functional.normalize(audio, dim=-1))
            assert not torch.equal(a[k], b[k])
        else:
            assert a[k].data_ptr() == b[k].data_ptr()  # shared, not copied
    torch.testing.assert_close(det.classes, text)  # the original keeps its rows
    dense = torch.randn(2, H, H, D)
    for x, y in zip(det(dense), swapped(dense), strict=True):
        torch.testing.assert_close(x, y)
    regions = det(dense)[2]
    torch.testing.assert_close(swapped.class_logits(regions), 20.0 * regions @ b["classes"].T)


def test_class_lists_are_checked():
    with pytest.raises(ValueError, match="non-empty"):
        Detector(D, torch.zeros(0, D))
    det = Detector(D, torch.randn(2, D))
    with pytest.raises(ValueError, match="non-empty"):
        det.with_classes(torch.zeros(0, D))
    with pytest.raises(ValueError, match="another model"):
        det.with_classes(torch.randn(2, 64))


def test_patch_targets_against_hand_placed_boxes():
    cls, tgt = patch_targets([torch.tensor([[8.0, 0.0, 23.0, 15.0]])], [torch.tensor([5])], 4, 4, 8, 8)
    # patch centres are at 4, 12, 20, 28: columns 1 and 2 (12, 20) and rows 0 and 1 (4, 12) are inside
    expect = torch.full((4, 4), -1)
    expect[0:2, 1:3] = 5
    assert torch.equal(cls[0], expect)
    assert torch.equal(tgt[0, 0, 1], torch.tensor([8.0, 0.0, 23.0, 15.0]))


def test_train_resume_save_load(tiny, tmp_path):
    classes = torch.nn.functional.normalize(torch.randn(3, D, generator=torch.Generator().manual_seed(1)), dim=-1)
    dense, boxes, labels = synthetic(64, classes)
    cfg = DetectorTrainConfig(steps=60, batch_size=16, hidden=32, checkpoint_every=30, class_names=("a", "b", "c"))
    det, folder = train_detector(tiny, dense, boxes, labels, classes, tmp_path / "run", cfg)
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 60 and metrics[-1]["acc"] > 0.9 and metrics[-1]["loss"] < metrics[0]["loss"]
    assert (tmp_path / "run" / "plots" / "loss.png").is_file()
    # held-out maps: the top box of each map's class overlaps its object
    test, tb, tl = synthetic(16, classes, seed=9)
    hits = [float(box_iou(det.best_box(test[i : i + 1], int(tl[i][0]))[0], tb[i])[0, 0]) > 0.5 for i in range(16)]
    assert sum(hits) >= 12
    # resume: stop at 30 (the checkpoint), continue to 60, same weights as the straight run
    _, none = train_detector(tiny, dense, boxes, labels, classes, tmp_path / "r2", cfg, stop_after=30)
    assert none is None and not (tmp_path / "r2" / "detector").exists()
    det2, _ = train_detector(tiny, dense, boxes, labels, classes, tmp_path / "r2", cfg)
    for k, v in det.state_dict().items():
        torch.testing.assert_close(det2.state_dict()[k], v)
    assert folder is not None
    loaded, meta = load_detector(folder, tiny)
    assert meta["class_names"] == ["a", "b", "c"]
    for k, v in det.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    other = ImageBind(get_config("imagebind_tiny").select(["vision"])).eval()
    with pytest.raises(ValueError, match="fingerprint"):
        load_detector(folder, other)


def test_detect_cli_swaps_classes_and_rejects_bad_input(tmp_path, capsys):
    from PIL import Image

    from bindkit.checkpoint import save_model
    from bindkit.cli import main

    torch.manual_seed(3)
    model = ImageBind(get_config("imagebind_tiny").select(["vision", "text"])).eval()
    model_dir = save_model(model, tmp_path / "model")
    classes = torch.nn.functional.normalize(torch.randn(3, D), dim=-1)
    g = torch.Generator().manual_seed(0)
    dense = torch.nn.functional.normalize(torch.randn(8, 8, 8, D, generator=g), dim=-1)  # 8 x 8 patches: 64 px
    boxes, labels = [torch.tensor([[8.0, 8.0, 32.0, 32.0]])] * 8, [torch.tensor([1])] * 8
    cfg = DetectorTrainConfig(steps=5, batch_size=4, hidden=8, class_names=("x", "y", "z"))
    _, folder = train_detector(model, dense, boxes, labels, classes, tmp_path / "run", cfg)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), np.uint8)).save(tmp_path / "i.png")
    args = ["detect", "--model", str(model_dir), "--detector", str(folder), "--image", str(tmp_path / "i.png")]
    main([*args, "--classes", "a seven,a two", "--threshold", "0", "--out", str(tmp_path / "out")])
    answer = json.loads((tmp_path / "out" / "i.detect.json").read_text())
    assert answer["classes"] == ["a seven", "a two"] and answer["detections"]
    assert {d["label"] for d in answer["detections"]} <= {"a seven", "a two"}
    assert all(0 <= d["box"][0] <= d["box"][2] for d in answer["detections"])
    assert (tmp_path / "out" / "i.detect.png").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit):  # the CLI turns the library's ValueError into one line on stderr
        main([*args, "--classes", " , ", "--out", str(tmp_path / "empty")])
    assert "class list is empty" in capsys.readouterr().err
    other = save_model(ImageBind(get_config("imagebind_tiny").select(["vision", "text"])).eval(), tmp_path / "m2")
    with pytest.raises(SystemExit):
        main(["detect", "--model", str(other), "--detector", str(folder), "--image", str(tmp_path / "i.png"),
              "--out", str(tmp_path / "other")])  # fmt: skip
    assert "fingerprint" in capsys.readouterr().err
    Image.new("RGB", (4, 4)).save(tmp_path / "small.png")
    with pytest.raises(SystemExit):  # refused before the class texts are embedded
        main(["detect", "--model", str(model_dir), "--detector", str(folder), "--image", str(tmp_path / "small.png"),
              "--classes", "a seven", "--out", str(tmp_path / "small")])  # fmt: skip
    assert "smaller than one" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # every class checked before any is embedded
        main([*args, "--classes", "a seven", "--class-file", f"x={tmp_path / 'missing.wav'}", "--out",
              str(tmp_path / "missing")])  # fmt: skip
    assert "missing.wav" in capsys.readouterr().err
    assert not any((tmp_path / d).exists() for d in ("empty", "other", "small", "missing"))

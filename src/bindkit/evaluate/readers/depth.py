"""Depth scene classification: NYU-D (10 classes, "others" = best of 18 scene names) and SUN-D (19 classes).

Depth maps become disparity = baseline * focal / depth in `bindkit.data.load_depth`; the readers attach each map's
focal length (SUN RGB-D: fx of its `intrinsics.txt`; NYU: the Kinect v1 fx) and sensor baseline (Kinect 0.075 m,
RealSense / Xtion 0.095 m) to its item, and say how the PNG stores depth (SUN RGB-D's bit-rotated millimetres, or
plain millimetres).
"""

from __future__ import annotations

from pathlib import Path

from bindkit.data.depth import NYU_FOCAL
from bindkit.evaluate.readers.base import EvalDataset, Item, check_missing, find_one, read_text
from bindkit.evaluate.readers.matfile import read_mat_strings

NYU_CLASSES = ["bathroom", "bedroom", "bookstore", "classroom", "dining room", "home office", "kitchen",
               "living room", "office", "others"]  # fmt: skip
NYU_OTHERS = ["basement", "cafe", "computer lab", "conference room", "dinette", "exercise room", "foyer",
              "furniture store", "home storage", "indoor balcony", "laundry room", "office kitchen", "playroom",
              "printer room", "reception room", "student lounge", "study", "study room"]  # fmt: skip
SUN_CLASSES = ["bathroom", "bedroom", "classroom", "computer room", "conference room", "corridor", "dining area",
               "dining room", "discussion area", "furniture store", "home office", "kitchen", "lab",
               "lecture theatre", "library", "living room", "office", "rest space", "study space"]  # fmt: skip
BASELINES = {"kv1": 0.075, "kv2": 0.075, "realsense": 0.095, "xtion": 0.095}


def _depth_item(path: Path, focal: float, baseline: float, encoding: str) -> Item:
    return Item(path, params=(("baseline", baseline), ("encoding", encoding), ("focal_length", focal)))


def nyu_class(scene: str) -> int:
    """Index in NYU_CLASSES of a raw NYUv2 scene type (27 types; the ones outside the nine named go to `others`)."""
    name = scene.strip().replace("_", " ")
    return NYU_CLASSES.index(name) if name in NYU_CLASSES[:-1] else NYU_CLASSES.index("others")


def read_nyud(
    root: str | Path,
    split: str = "test",
    focal: float = NYU_FOCAL,
    baseline: float = 0.075,
    missing: str = "error",
) -> EvalDataset:
    """NYU-D from `<split>/{depth,scene_class}/NNNN.{png,txt}` (mm PNGs) or a folder per class (`others` last)."""
    root = Path(root)
    scene_dir = next((d for d in (root / split / "scene_class", root / "scene_class") if d.is_dir()), None)
    if scene_dir is not None:
        items, labels, lost = [], [], []
        for txt in sorted(scene_dir.glob("*.txt")):
            depth = scene_dir.parent / "depth" / f"{txt.stem}.png"
            if not depth.is_file():
                lost.append((str(depth), "file not found"))
                continue
            items.append(_depth_item(depth, focal, baseline, "mm"))
            labels.append(nyu_class(read_text(txt)))
    else:
        items, labels, lost = _class_folders(
            root, [c.replace(" ", "_") for c in NYU_CLASSES], focal, baseline
        )
    if not items:
        raise FileNotFoundError(
            f"{root}: no NYU-D layout found ({split}/scene_class/*.txt or one folder per class)"
        )
    check_missing("nyud", lost, missing)
    prompts = [[c] for c in NYU_CLASSES[:-1]] + [NYU_OTHERS]
    return EvalDataset("nyud", "depth", "classification", items, list(NYU_CLASSES), prompts, labels=labels,
                       missing=lost, root=root)  # fmt: skip


def _class_folders(root: Path, folders: list[str], focal: float, baseline: float):
    """Items from `<dir>/<class folder>/*.png` where <dir> is the shallowest folder holding the class folders."""
    cands = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    base = next((d for d in cands if sum((d / f).is_dir() for f in folders) >= 2), None)
    if base is None:
        return [], [], []
    items, labels = [], []
    for c, f in enumerate(folders):
        for p in sorted((base / f).glob("*.png")) if (base / f).is_dir() else []:
            items.append(_depth_item(p, focal, baseline, "mm"))
            labels.append(c)
    return items, labels, []


def read_intrinsics(path: Path) -> float:
    """fx of a SUN RGB-D `intrinsics.txt` (3x3 K, row-major)."""
    vals = read_text(path).split()
    if len(vals) != 9:
        raise ValueError(f"{path}: expected 9 numbers (3x3 intrinsics), got {len(vals)}")
    return float(vals[0])


def _sun_samples(root: Path) -> list[Path]:
    """Sample folders (holding `scene.txt`) under a SUN RGB-D tree, sorted."""
    return sorted(p.parent for p in root.rglob("scene.txt"))


def _sun_depth(sample: Path) -> Path | None:
    for sub in ("depth_bfx", "depth"):  # the paper uses in-filled depth: prefer depth_bfx
        files = sorted((sample / sub).glob("*.png")) if (sample / sub).is_dir() else []
        if files:
            return files[0]
    return None


def read_sund(root: str | Path, test_list: str | Path | None = None, missing: str = "error") -> EvalDataset:
    """SUN-D: SUN RGB-D sample folders whose `scene.txt` is one of the 19 classes, split by `test_list` (sample
    paths, one a line; the rest is train) or by the toolbox's `allsplit.mat` (alltest / alltrain) when found."""
    root = Path(root)
    samples = _sun_samples(root)
    if not samples:
        raise FileNotFoundError(f"{root}: no SUN RGB-D sample folders (with scene.txt) found")
    split, source = _sun_split(root, test_list)
    names = [c.replace(" ", "_") for c in SUN_CLASSES]
    items, labels, splits, lost, excluded = [], [], [], [], dict[str, int]()
    for s in samples:
        scene = read_text(s / "scene.txt").strip()
        part = "test" if split is None else split(_sample_key(s))
        why = f"scene '{scene}' outside the 19 classes" if scene not in names else None
        if why is None and part is None:
            why = f"not in {source}"
        if why:
            excluded[why] = excluded.get(why, 0) + 1
            continue
        depth = _sun_depth(s)
        if depth is None or not (s / "intrinsics.txt").is_file():
            lost.append((str(s), "no depth_bfx/ or depth/ PNG, or no intrinsics.txt"))
            continue
        sensor = next(p for p in s.relative_to(root).parts if p in BASELINES)
        items.append(_depth_item(depth, read_intrinsics(s / "intrinsics.txt"), BASELINES[sensor], "sunrgbd"))
        labels.append(names.index(scene))
        splits.append(part)
    check_missing("sund", lost, missing)
    ds = EvalDataset("sund", "depth", "classification", items, list(SUN_CLASSES), labels=labels,
                     splits=splits if split else None, missing=lost, excluded=excluded, root=root)  # fmt: skip
    ds.notes.append(f"split: {source}")
    return ds


def _sun_split(root: Path, test_list: str | Path | None):
    """(sample key -> "train" / "test" / None, where the split came from); (None, ...) when there is no split."""
    if test_list is not None:
        test = _keys(read_text(Path(test_list)).splitlines())
        return (lambda k: "test" if k in test else "train"), f"test list {test_list}"
    beside = root.parent / "SUNRGBDtoolbox" / "traintestSUNRGBD" / "allsplit.mat"  # toolbox next to the data
    mat = find_one(root, "allsplit.mat", required=False) or (beside if beside.is_file() else None)
    if mat is None:
        return None, "none found (no allsplit.mat, no test list): every sample of the 19 classes is scored"
    table = read_mat_strings(mat)
    if "alltest" not in table or "alltrain" not in table:
        raise ValueError(f"{mat}: expected variables alltrain and alltest, found {sorted(table)}")
    test, train = _keys(table["alltest"]), _keys(table["alltrain"])
    return (lambda k: "test" if k in test else "train" if k in train else None), str(mat)


def _keys(lines) -> set[str]:
    return {_sample_key(ln.strip()) for ln in lines if ln.strip()}


def _sample_key(path: Path | str) -> str:
    """The part of a sample path from its sensor folder on (`kv1/NYUdata/NYU0001`), for matching split lists."""
    parts = Path(str(path).rstrip("/")).parts
    start = next((i for i, p in enumerate(parts) if p in BASELINES), None)
    if start is None:
        raise ValueError(f"sample path {path} holds no sensor folder (kv1, kv2, realsense, xtion)")
    return "/".join(parts[start:])

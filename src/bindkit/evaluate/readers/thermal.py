"""LLVIP person-vs-background on infrared crops (paper App. A).

Person boxes come from the Pascal-VOC annotations of the test images. The paper adds "random boxes of pedestrian
size" as background without giving the recipe; ours, deterministic per image: for every person box, a box of the same
size placed uniformly at random where it does not intersect any person box (up to 100 tries, counted if none fits).
Prompt names: person <- person, man, woman, people; background <- street, road, car, light, tree (best name counts).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np

from bindkit.evaluate.readers.base import EvalDataset, Item, check_missing

LLVIP_PROMPTS = [["person", "man", "woman", "people"], ["street", "road", "car", "light", "tree"]]
Box = tuple[int, int, int, int]


def read_voc_boxes(path: Path, name: str = "person") -> tuple[tuple[int, int], list[Box]]:
    """((width, height), boxes of objects called `name`) from a Pascal-VOC XML file."""
    try:
        tree = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: not valid XML ({e})") from e
    size = tree.find("size")
    if size is None:
        raise ValueError(f"{path}: no <size> element")
    wh = (int(size.findtext("width", "0")), int(size.findtext("height", "0")))
    boxes = []
    for obj in tree.iter("object"):
        if (obj.findtext("name") or "").strip() != name:
            continue
        bb = obj.find("bndbox")
        if bb is None:
            raise ValueError(f"{path}: a {name} object without a <bndbox>")
        x0, y0, x1, y1 = (int(float(bb.findtext(k, "nan"))) for k in ("xmin", "ymin", "xmax", "ymax"))
        box = (x0, y0, x1, y1)
        if not (0 <= box[0] < box[2] and 0 <= box[1] < box[3]):
            raise ValueError(f"{path}: degenerate {name} box {box}")
        boxes.append(box)
    return wh, boxes


def _intersects(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def background_boxes(
    size: tuple[int, int], persons: list[Box], seed: int, tries: int = 100
) -> list[Box | None]:
    """One person-sized box per person box, placed where it touches no person (None where no place was found)."""
    rng = np.random.default_rng(seed)
    out: list[Box | None] = []
    for x0, y0, x1, y1 in persons:
        w, h = x1 - x0, y1 - y0
        found = None
        for _ in range(tries):
            bx, by = int(rng.integers(0, size[0] - w + 1)), int(rng.integers(0, size[1] - h + 1))
            cand = (bx, by, bx + w, by + h)
            if not any(_intersects(cand, p) for p in persons):
                found = cand
                break
        out.append(found)
    return out


def read_llvip(root: str | Path, split: str = "test", seed: int = 0, missing: str = "error") -> EvalDataset:
    """LLVIP (`Annotations/*.xml`, `infrared/<split>/*.jpg`): person crops and as many background crops."""
    root = Path(root)
    ann_dir = _find_dir(root, "Annotations")
    img_dir = _find_dir(root, "infrared") / split
    if not img_dir.is_dir():
        raise FileNotFoundError(f"{root}: no infrared/{split}/ folder")
    items, labels, lost, excluded = [], [], [], dict[str, int]()
    for img in sorted(img_dir.glob("*.jpg")):
        xml = ann_dir / f"{img.stem}.xml"
        if not xml.is_file():
            lost.append((str(xml), "annotation not found"))
            continue
        size, persons = read_voc_boxes(xml)
        bgs = background_boxes(size, persons, seed + zlib.crc32(img.stem.encode()))
        for p, b in zip(persons, bgs, strict=True):
            items.append(Item(img, box=p))
            labels.append(0)
            if b is None:
                excluded["no background place found"] = excluded.get("no background place found", 0) + 1
                continue
            items.append(Item(img, box=b))
            labels.append(1)
    check_missing("llvip", lost, missing)
    return EvalDataset("llvip", "thermal", "classification", items, ["person", "background"], LLVIP_PROMPTS,
                       labels=labels, missing=lost, excluded=excluded, root=root)  # fmt: skip


def _find_dir(root: Path, name: str) -> Path:
    for d in [root, *sorted(root.glob("*")), *sorted(root.glob("*/*"))]:
        if (d / name).is_dir():
            return d / name
    raise FileNotFoundError(f"{root}: no {name}/ folder found (searched 2 levels deep)")

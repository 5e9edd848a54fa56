"""Any labelled data: a folder per class (optionally under `train/` and `test/`), or a CSV of (file, label).

The modality is guessed from file extensions for images, audio and video; depth, thermal and IMU files look like
images or tables, so those need `modality=` (a single-channel 16-bit or float picture is refused as ambiguous
without it). Prompt names are the class names with `_` read as spaces, or come from
a class-name file (see `zeroshot.load_class_names`).
"""

from __future__ import annotations

from pathlib import Path

from bindkit.evaluate.readers.base import (
    AUDIO_EXTS,
    IMAGE_EXTS,
    VIDEO_EXTS,
    EvalDataset,
    Item,
    need_columns,
    read_csv,
)

EXT_MODALITY = {
    **{e: "vision" for e in IMAGE_EXTS},
    **{e: "audio" for e in AUDIO_EXTS},
    **{e: "video" for e in VIDEO_EXTS},
}


def guess_modality(paths: list[Path]) -> str:
    """The one modality all files' extensions point to; a clear error when mixed or unknown."""
    kinds = {EXT_MODALITY.get(p.suffix.lower()) for p in paths}
    if None in kinds:
        odd = next(p for p in paths if p.suffix.lower() not in EXT_MODALITY)
        raise ValueError(f"cannot tell the modality of {odd} from its extension: pass modality=")
    known = {k for k in kinds if k is not None}  # all of them, after the check above
    if len(known) != 1:
        raise ValueError(f"files of several modalities {sorted(known)}: pass modality= or split the folder")
    kind = known.pop()
    if kind == "vision":
        for p in paths:
            _refuse_ambiguous_picture(p)
    return kind


AMBIGUOUS_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")  # one 16-bit or float channel


def _refuse_ambiguous_picture(path: Path) -> None:
    """A single-channel 16-bit or float picture may be depth or thermal, not a photo: the caller must say which
    (the rule `bindkit embed` applies too). Only the header is read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            mode = img.mode
    except Exception:  # noqa: BLE001 - an unreadable file is reported by the loader, with its reason
        return
    if mode in AMBIGUOUS_MODES:
        raise ValueError(f"ambiguous: {path} is a single-channel {mode} picture, which may be depth or thermal "
                         "rather than an image; pass modality= (--modality depth or thermal)")  # fmt: skip


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))


def _scan(root: Path) -> tuple[list[str], list[Path], list[str]]:
    """(sorted class folder names, files, class of each file) of a folder-per-class tree."""
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, owners = [], []
    for c in classes:
        fs = _files(root / c)
        files += fs
        owners += [c] * len(fs)
    return classes, files, owners


def read_folder(
    root: str | Path,
    modality: str | None = None,
    class_names: list[list[str]] | None = None,
    name: str = "folder",
) -> EvalDataset:
    """Classes from sub-folder names (sorted); with `train/` and `test/` sub-folders, both, marked as splits."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a directory")
    split_dirs = [s for s in ("train", "test") if (root / s).is_dir()]
    parts = [(s, *_scan(root / s)) for s in split_dirs] if split_dirs else [(None, *_scan(root))]
    classes = sorted({c for _, cs, _, _ in parts for c in cs})
    index = {c: i for i, c in enumerate(classes)}
    items, labels, splits = [], [], []
    for s, _, files, owners in parts:
        items += [Item(p) for p in files]
        labels += [index[c] for c in owners]
        splits += [s] * len(files)
    if not items:
        raise FileNotFoundError(f"{root}: no files in class folders")
    return _dataset(name, root, items, labels, classes, modality, class_names, splits if split_dirs else None)


def read_labels_csv(
    path: str | Path,
    modality: str | None = None,
    class_names: list[list[str]] | None = None,
    name: str = "folder",
) -> EvalDataset:
    """A CSV with columns `file,label` (optionally `split`); files relative to the CSV's folder."""
    path = Path(path)
    rows = read_csv(path)
    need_columns(rows, ("file", "label"), path)
    classes = sorted({r["label"] for r in rows})
    items = [Item((path.parent / r["file"]).resolve()) for r in rows]
    lost = [str(it.path) for it in items if not it.path.is_file()]
    if lost:
        raise FileNotFoundError(f"{path}: {len(lost)} listed files are absent, e.g. {lost[:3]}")
    index = {c: i for i, c in enumerate(classes)}
    labels = [index[r["label"]] for r in rows]
    splits = [r["split"] for r in rows] if "split" in rows[0] else None
    return _dataset(name, path.parent, items, labels, classes, modality, class_names, splits)


def _dataset(name, root, items, labels, classes, modality, class_names, splits) -> EvalDataset:
    modality = modality or guess_modality([it.path for it in items])
    if modality == "image":
        modality = "vision"
    if class_names is not None and len(class_names) != len(classes):
        raise ValueError(f"{len(class_names)} class names given for {len(classes)} classes {classes}")
    prompts = class_names or [[c.replace("_", " ")] for c in classes]
    return EvalDataset(name, modality, "classification", items, classes, prompts, labels=labels, splits=splits,
                       root=root)  # fmt: skip

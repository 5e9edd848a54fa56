"""Audio benchmarks: ESC-50, Clotho, AudioCaps, AudioSet (AS-A) and VGGSound, in the layouts users download."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from bindkit.evaluate.readers.base import (
    AUDIO_EXTS,
    VIDEO_EXTS,
    EvalDataset,
    Item,
    check_missing,
    find_one,
    index_files,
    need_columns,
    read_csv,
    read_text,
)


def read_esc50(
    root: str | Path, folds: tuple[int, ...] = (1, 2, 3, 4, 5), missing: str = "error"
) -> EvalDataset:
    """ESC-50 (`meta/esc50.csv` + `audio/*.wav`): 50 classes in target order, prompts with `_` read as spaces."""
    csv_path = find_one(Path(root), "esc50.csv")
    base = csv_path.parent.parent  # ESC-50-master/
    rows = read_csv(csv_path)
    need_columns(rows, ("filename", "fold", "target", "category"), csv_path)
    names: dict[int, str] = {}
    items, labels, fold_of, lost = [], [], [], []
    for r in rows:
        t, cat = int(r["target"]), r["category"]
        if names.setdefault(t, cat) != cat:
            raise ValueError(f"{csv_path}: target {t} is both {names[t]!r} and {cat!r}")
        if int(r["fold"]) not in folds:
            continue
        p = base / "audio" / r["filename"]
        if not p.is_file():
            lost.append((str(p), "file not found"))
            continue
        items.append(Item(p))
        labels.append(t)
        fold_of.append(int(r["fold"]))
    if sorted(names) != list(range(len(names))):
        raise ValueError(f"{csv_path}: targets are not 0..{len(names) - 1}: {sorted(names)}")
    check_missing("esc50", lost, missing)
    class_names = [names[t].replace("_", " ") for t in range(len(names))]
    return EvalDataset("esc50", "audio", "classification", items, class_names, labels=labels, folds=fold_of,
                       missing=lost, root=base)  # fmt: skip


def read_clotho(root: str | Path, split: str = "evaluation", missing: str = "error") -> EvalDataset:
    """Clotho (`clotho_captions_<split>.csv` + `<split>/*.wav`): one item per audio file, 5 captions each."""
    root = Path(root)
    csv_path = find_one(root, f"clotho_captions_{split}.csv")
    rows = read_csv(csv_path)
    need_columns(rows, ("file_name", "caption_1"), csv_path)
    audio = index_files(root, AUDIO_EXTS)
    by_name = {p.name: p for p in audio.values() if p.parent.name == split} or {
        p.name: p for p in audio.values()
    }
    items, captions, lost = [], [], []
    for r in rows:
        caps = [r[k].strip('"').strip() for k in sorted(r) if k.startswith("caption_") and r[k].strip()]
        p = by_name.get(r["file_name"])
        if p is None:
            lost.append((r["file_name"], f"not found under {root}"))
            continue
        items.append(Item(p))
        captions.append(caps)
    check_missing("clotho", lost, missing)
    return EvalDataset("clotho", "audio", "retrieval", items, captions=captions, missing=lost, root=root)


def _clip_file(media: dict[str, Path], ytid: str, start: float) -> Path | None:
    """A YouTube segment's file under the naming conventions seen in the wild."""
    s = int(float(start))
    for stem in (
        f"{ytid}_{s}",
        f"{ytid}_{s:06d}",
        f"Y{ytid}",
        ytid,
        f"{ytid}_{s}_{s + 10}",
        f"{ytid}_{float(start):.3f}",
    ):
        if stem in media:
            return media[stem]
    return None


def read_audiocaps(root: str | Path, split: str = "test", missing: str = "skip") -> EvalDataset:
    """AudioCaps (`<split>.csv` rows audiocap_id,youtube_id,start_time,caption; media named `{id}_{start}` or `Y{id}`)."""
    root = Path(root)
    csv_path = find_one(root, f"{split}.csv")
    rows = read_csv(csv_path)
    need_columns(rows, ("youtube_id", "start_time", "caption"), csv_path)
    clips: dict[tuple[str, str], list[str]] = {}
    for r in rows:  # rows of one clip are not contiguous: group them, keeping first-seen order
        clips.setdefault((r["youtube_id"], r["start_time"]), []).append(r["caption"])
    media = index_files(root, AUDIO_EXTS + VIDEO_EXTS)
    items, captions, lost = [], [], []
    for (yt, start), caps in clips.items():
        p = _clip_file(media, yt, float(start))
        if p is None:
            lost.append((f"{yt}@{start}", "no media file"))
            continue
        items.append(Item(p))
        captions.append(caps)
    check_missing("audiocaps", lost, missing)
    return EvalDataset("audiocaps", "audio", "retrieval", items, captions=captions, missing=lost, root=root)


def read_audioset(
    root: str | Path, segments: str = "eval_segments.csv", missing: str = "skip"
) -> EvalDataset:
    """AudioSet audio-only (AS-A): `eval_segments.csv` + `class_labels_indices.csv`, 527 labels, multi-label."""
    root = Path(root)
    seg_path = find_one(root, segments)
    lab_path = find_one(root, "class_labels_indices.csv")
    lab = read_csv(lab_path)
    need_columns(lab, ("index", "mid", "display_name"), lab_path)
    lab.sort(key=lambda r: int(r["index"]))
    mid_to_idx = {r["mid"]: i for i, r in enumerate(lab)}
    lines = [ln for ln in read_text(seg_path).splitlines() if ln.strip() and not ln.startswith("#")]
    rows = read_csv_lines(lines)
    media = index_files(root, AUDIO_EXTS + VIDEO_EXTS)
    items, labels, lost = [], [], []
    for i, r in enumerate(rows):
        if len(r) != 4:
            raise ValueError(f"{seg_path}: data row {i + 1} has {len(r)} fields, expected 4: {r}")
        ytid, start, _end, mids = r
        unknown = [m for m in mids.split(",") if m not in mid_to_idx]
        if unknown:
            raise ValueError(f"{seg_path}: {ytid} has labels absent from {lab_path.name}: {unknown}")
        p = _clip_file(media, ytid, float(start))
        if p is None:
            lost.append((ytid, "no media file"))
            continue
        items.append(Item(p))
        labels.append(sorted(mid_to_idx[m] for m in mids.split(",")))
    check_missing("audioset", lost, missing)
    names = [r["display_name"] for r in lab]
    return EvalDataset(
        "audioset", "audio", "multilabel", items, names, labels=labels, missing=lost, root=root
    )


def read_csv_lines(lines: list[str]) -> list[list[str]]:
    """Rows of comma+space separated, quoted CSV lines (AudioSet's segment files)."""
    return [[c.strip() for c in r] for r in csv.reader(lines, skipinitialspace=True)]


def read_vggsound(root: str | Path, split: str = "test", missing: str = "skip") -> EvalDataset:
    """VGGSound: headerless `vggsound.csv` (id,start,label,split) or `test.csv` (`<id>_<start>.mp4`,label)."""
    root = Path(root)
    full = find_one(root, "vggsound.csv", required=False)
    if full is not None:
        rows = read_csv(full, header=False)
        bad = [r for r in rows if len(r) != 4]
        if bad:
            raise ValueError(f"{full}: rows must have 4 fields (id,start,label,split), e.g. {bad[0]}")
        vocab = sorted({r[2] for r in rows})
        segments = [(r[0], float(r[1]), r[2]) for r in rows if r[3] == split]
    else:
        path = find_one(root, f"{split}.csv")
        raw = read_csv(path, header=False)
        segments = [(*_split_name(r[0]), r[1]) for r in raw]
        vocab = sorted({r[2] for r in segments})
    media = index_files(root, AUDIO_EXTS + VIDEO_EXTS)
    index = {c: i for i, c in enumerate(vocab)}
    items, labels, lost = [], [], []
    for yt, start, label in segments:
        p = _clip_file(media, yt, start)
        if p is None:
            lost.append((f"{yt}_{int(start):06d}", "no media file"))
            continue
        items.append(Item(p))
        labels.append(index[label])
    check_missing("vggsound", lost, missing)
    ds = EvalDataset(
        "vggsound", "audio", "classification", items, vocab, labels=labels, missing=lost, root=root
    )
    ds.notes.append(f"{len(vocab)} classes (sorted labels); {len(Counter(labels))} present among found clips")
    return ds


def _split_name(name: str) -> tuple[str, float]:
    """`<ytid>_<start:06d>.mp4` -> (ytid, start); ids hold `_` and `-`, so split on the last underscore."""
    stem = Path(name).stem
    yt, _, start = stem.rpartition("_")
    if not yt or not start.isdigit():
        raise ValueError(f"VGGSound file name {name!r} is not <youtube id>_<start seconds>.<ext>")
    return yt, float(start)

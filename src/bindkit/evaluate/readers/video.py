"""MSR-VTT 1k-A (JSFusion) text->video retrieval: `MSRVTT_JSFUSION_test.csv` (one caption per video) + the mp4s."""

from __future__ import annotations

from pathlib import Path

from bindkit.evaluate.readers.base import (
    VIDEO_EXTS,
    EvalDataset,
    Item,
    check_missing,
    find_one,
    index_files,
    need_columns,
    read_csv,
)


def read_msrvtt(root: str | Path, modality: str = "video", missing: str = "skip") -> EvalDataset:
    """MSR-VTT 1k-A; `modality="audio"` embeds the videos' sound tracks instead of their frames."""
    root = Path(root)
    csv_path = find_one(root, "MSRVTT_JSFUSION_test.csv")
    rows = read_csv(csv_path)
    need_columns(rows, ("video_id", "sentence"), csv_path)
    media = index_files(root, VIDEO_EXTS)
    items, captions, lost = [], [], []
    for r in rows:
        p = media.get(r["video_id"])
        if p is None:
            lost.append((r["video_id"], "no video file"))
            continue
        items.append(Item(p))
        captions.append([r["sentence"]])
    check_missing("msrvtt", lost, missing)
    return EvalDataset("msrvtt", modality, "retrieval", items, captions=captions, missing=lost, root=root)

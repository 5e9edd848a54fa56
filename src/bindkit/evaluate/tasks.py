"""The evaluation tasks `run_eval` knows: which reader, which protocol, and the paper's numbers for each.

Paper numbers are those of the official `imagebind_huge` checkpoint: Table 2 (emergent zero-shot), Table 3
(Clotho, AudioCaps text->audio), Table 4 (MSR-VTT text->video with audio, video, and 0.95/0.05 fusion).
Few-shot results exist only as Figure 3 plots, so the few-shot tasks have no paper numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bindkit.evaluate import readers as R

# Table 2 columns in the paper's order, for the columns bindkit can run (IN1K/P365/K400 are OpenCLIP's).
TABLE2_COLUMNS = ("MSR-VTT", "NYU-D", "SUN-D", "AS-A", "VGGS", "ESC", "LLVIP", "Ego4D")


@dataclass(frozen=True)
class TaskSpec:
    """One task: its reader, protocol, headline metric, Table 2 column, the paper's numbers, and the encoders its
    protocol uses beyond its data's own (text for class prompts and captions)."""

    name: str
    reader: Callable[..., R.EvalDataset]
    protocol: str  # "zeroshot" | "retrieval" | "fewshot" | "fusion" | "pair"
    metric: str  # headline metric, a dotted path into the metrics dict
    column: str | None = None
    paper: dict[str, float] = field(default_factory=dict)
    reader_kwargs: dict = field(default_factory=dict)
    description: str = ""
    encoders: tuple[str, ...] = ("text",)


_T2I = "text_to_item"
_NONE: tuple[str, ...] = ()  # linear probes and item-to-item retrieval embed only the data
TASKS: dict[str, TaskSpec] = {t.name: t for t in [
    TaskSpec("esc50", R.read_esc50, "zeroshot", "top1", "ESC", {"top1": 66.9},
             description="ESC-50 audio, 50 classes, mean over the 5 folds"),
    TaskSpec("esc50-fewshot", R.read_esc50, "fewshot", "k=1.mean",
             encoders=_NONE, description="ESC-50 linear probes, fold 1 tested, shots from folds 2-5 (paper Fig. 3)"),
    TaskSpec("clotho", R.read_clotho, "retrieval", f"{_T2I}.R@1", None,
             {f"{_T2I}.R@1": 6.0, f"{_T2I}.R@10": 28.4}, description="Clotho eval, text->audio, 5 captions"),
    TaskSpec("audiocaps", R.read_audiocaps, "retrieval", f"{_T2I}.R@1", None,
             {f"{_T2I}.R@1": 9.3, f"{_T2I}.R@10": 42.3}, description="AudioCaps test, text->audio"),
    TaskSpec("audioset", R.read_audioset, "zeroshot", "mAP", "AS-A", {"mAP": 17.6},
             description="AudioSet eval segments, 527 labels, mAP"),
    TaskSpec("vggsound", R.read_vggsound, "zeroshot", "top1", "VGGS", {"top1": 27.8},
             description="VGGSound test, 309 classes"),
    TaskSpec("nyud", R.read_nyud, "zeroshot", "top1", "NYU-D", {"top1": 54.0},
             description="NYU-v2 depth, 10 scenes, 'others' = best of 18 names"),
    TaskSpec("sund", R.read_sund, "zeroshot", "top1", "SUN-D", {"top1": 35.1},
             description="SUN RGB-D depth, 19 scenes"),
    TaskSpec("sund-fewshot", R.read_sund, "fewshot", "k=1.mean",
             encoders=_NONE, description="SUN-D linear probes, train/test split (paper Fig. 3)"),
    TaskSpec("llvip", R.read_llvip, "zeroshot", "top1", "LLVIP", {"top1": 63.4},
             description="LLVIP infrared crops, person vs background"),
    TaskSpec("ego4d", R.read_ego4d, "zeroshot", "top1", "Ego4D", {"top1": 25.0},
             description="Ego4D IMU 5-s windows, scenario"),
    TaskSpec("msrvtt", R.read_msrvtt, "retrieval", f"{_T2I}.R@1", "MSR-VTT", {f"{_T2I}.R@1": 36.1},
             description="MSR-VTT 1k-A, text->video"),
    TaskSpec("msrvtt-audio", R.read_msrvtt, "retrieval", f"{_T2I}.R@1", None,
             {f"{_T2I}.R@1": 6.8, f"{_T2I}.R@5": 18.5, f"{_T2I}.R@10": 27.2}, {"modality": "audio"},
             description="MSR-VTT 1k-A, text->audio track"),
    TaskSpec("msrvtt-av", R.read_msrvtt, "fusion", f"{_T2I}.R@1", None,
             {f"{_T2I}.R@1": 36.8, f"{_T2I}.R@5": 61.8, f"{_T2I}.R@10": 70.0},
             encoders=("text", "vision", "audio"), description="MSR-VTT 1k-A, text->(0.95 video + 0.05 audio)"),
    TaskSpec("folder", R.read_folder, "zeroshot", "top1",
             description="any folder per class (or train/ and test/ of them), zero-shot"),
    TaskSpec("csv", R.read_labels_csv, "zeroshot", "top1", description="a CSV of file,label, zero-shot"),
    TaskSpec("folder-fewshot", R.read_folder, "fewshot", "k=1.mean",
             encoders=_NONE, description="folder with train/ and test/ class folders, linear probes"),
    TaskSpec("folder-pair", R.read_folder, "pair", "R@1",
             encoders=_NONE, description="two class folders (query, gallery): retrieval, relevant = same class"),
    TaskSpec("csv-fewshot", R.read_labels_csv, "fewshot", "k=1.mean",
             encoders=_NONE, description="a CSV of file,label,split (train rows give the shots), linear probes"),
    TaskSpec("csv-pair", R.read_labels_csv, "pair", "R@1",
             encoders=_NONE, description="two CSVs of file,label (query, gallery): retrieval, relevant = same class"),
]}  # fmt: skip


def get_task(name: str) -> TaskSpec:
    """The task called `name`, or an error listing the known ones."""
    if name not in TASKS:
        raise KeyError(f"unknown eval task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def lookup(metrics: dict, path: str) -> float | None:
    """The value at a dotted path (`text_to_item.R@1`) of a nested metrics dict, None where absent."""
    cur = metrics
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return None
        cur = cur[part]
    return cur if isinstance(cur, (int, float)) else None

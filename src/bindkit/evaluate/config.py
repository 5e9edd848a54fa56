"""`EvalConfig`: everything `run_eval` needs, one dataclass; `bindkit eval`'s flags are taken from its fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bindkit.flags import opt

if TYPE_CHECKING:
    import torch

    from bindkit.model import ImageBind

Roots = str | Path | Sequence[str | Path] | Mapping[str, Any]


def task_option(text: str) -> tuple[str, str, str]:
    """`TASK.KEY=VALUE` -> (task, key, value)."""
    task_key, eq, value = text.partition("=")
    task, dot, key = task_key.partition(".")
    if not (eq and dot and task and key):
        raise ValueError(f"{text!r}: expected TASK.KEY=VALUE")
    return task, key, value


@dataclass
class EvalConfig:
    """Which tasks on which data with which model, and how to embed, cache and report."""

    tasks: list[str] = opt(help="esc50, clotho, audiocaps, nyud, sund, llvip, ego4d, msrvtt, audioset, vggsound, "
                                "folder, ... (repeat for a Table 2 layout)", flag="task", append=True)  # fmt: skip
    root: Roots = opt(help="dataset folder (repeat per task)", type=Path, append=True)
    model: ImageBind | str | Path = opt(help="imagebind_huge, a bindkit model folder, or an official .pth", type=str)
    out: Path | None = opt(None, help="where the JSON results go", cli_default=Path("eval_results.json"))
    cache_dir: Path | None = opt(None, help="embedding cache folder (default ~/.cache/bindkit/eval)")
    cache: bool = opt(True, help="do not read or write the embedding cache")
    device: str = opt("cpu", help="torch device")
    dtype: str | torch.dtype | None = opt(None, help="compute precision", choices=["fp32", "bf16"], type=str)
    batch_size: int = opt(32, help="items per forward pass")
    templates: str | Path | Sequence[str] | None = opt(
        None, help="a file of prompt templates with {} (default: the 80 CLIP templates)", type=str
    )
    class_names: str | Path | None = opt(None, help="a file of class names (one per line)", type=str)
    modality: str | list[str] | None = opt(
        None, help="the modality of a folder/csv task (twice for a pair task)", append=True
    )
    shots: tuple[int, ...] = opt((1, 2, 4, 8), help="few-shot training examples per class")
    seeds: tuple[int, ...] = opt((0, 1, 2), help="few-shot sampling seeds")
    fusion_weights: tuple[float, float] = opt((0.95, 0.05), help="(video, audio) weights of the fusion task")
    options: dict[str, dict[str, Any]] = opt(
        {}, help="TASK.KEY=VALUE passed to a task's reader", flag="option", type=task_option, append=True
    )
    checkpoint: Path | None = opt(None, help="official .pth for --model imagebind_huge")
    model_id: str | None = opt(None, help="cache key of the model (default: a hash of its weights)", cli=False)
    on_error: str = opt("raise", help="an unreadable item stops the run, or is skipped and listed",
                        choices=["raise", "skip"])  # fmt: skip
    limit: int | None = opt(None, help="evaluate only the first N items per task")
    compare_paper: bool | None = opt(None, help="print the paper's numbers beside ours")
    progress: bool = opt(True, help="no progress bars")
    verbose: bool = opt(True, help="print the report", cli=False)

    def __post_init__(self) -> None:
        if isinstance(self.modality, list | tuple):  # one given: every task's; two: a pair task's query, gallery
            self.modality = None if not self.modality else self.modality[0] if len(self.modality) == 1 else \
                list(self.modality)  # fmt: skip
        if isinstance(self.options, list):  # from repeated --option flags
            folded: dict[str, dict[str, Any]] = {}
            for task, key, value in self.options:
                folded.setdefault(task, {})[key] = value
            self.options = folded
        if isinstance(self.root, list) and len(self.root) == 1:
            self.root = self.root[0]

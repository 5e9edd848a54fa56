"""Evaluation: the paper's protocols on embeddings, readers for its benchmarks, and `run_eval` over a model.

Protocols are model-agnostic (embeddings in, percentages out):
    zero_shot(emb, labels, class_emb)                      top-1/top-5/mean per-class recall (or mAP)
    class_embeddings(encode_text, class_names, templates)  prompt-averaged class embeddings (80 CLIP templates)
    retrieval(queries, keys, relevant)                     Recall@K, CLIP_benchmark convention
    few_shot(train_emb, train_y, test_emb, test_y, shots=(1, 2, 4, 8), seeds=(0, 1, 2))
    compose / nearest / share_with_attributes / arithmetic embedding arithmetic, fuse(a, b, (0.95, 0.05))
`run_eval(EvalConfig(tasks, root, model))` runs named tasks (`evaluate.tasks.TASKS`) end to end.
"""

from bindkit.evaluate.arithmetic import arithmetic, compose, fuse, nearest, share_with_attributes
from bindkit.evaluate.cache import EmbeddingCache
from bindkit.evaluate.config import EvalConfig
from bindkit.evaluate.fewshot import (
    PAPER_SETTINGS,
    LinearProbes,
    ProbeSettings,
    few_shot,
    sample_shots,
    settings_for,
    train_probes,
)
from bindkit.evaluate.metrics import (
    average_precision,
    mean_average_precision,
    mean_per_class_recall,
    recall_at_k,
    topk_accuracy,
)
from bindkit.evaluate.readers import EvalDataset, Item
from bindkit.evaluate.retrieval import caption_retrieval, cosine_scores, flatten_captions, retrieval
from bindkit.evaluate.runner import run_eval
from bindkit.evaluate.tasks import TASKS
from bindkit.evaluate.zeroshot import (
    class_embeddings,
    default_templates,
    load_class_names,
    load_templates,
    zero_shot,
    zero_shot_scores,
)

__all__ = [
    "PAPER_SETTINGS", "TASKS", "EmbeddingCache", "EvalConfig", "EvalDataset", "Item", "LinearProbes", "ProbeSettings", "arithmetic",
    "average_precision", "caption_retrieval", "class_embeddings", "compose", "cosine_scores", "default_templates",
    "few_shot", "flatten_captions", "fuse", "load_class_names", "load_templates", "mean_average_precision",
    "mean_per_class_recall", "nearest", "recall_at_k", "retrieval", "run_eval", "sample_shots", "settings_for",
    "share_with_attributes", "topk_accuracy", "train_probes", "zero_shot", "zero_shot_scores",
]  # fmt: skip

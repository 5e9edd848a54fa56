"""Protocols applied to a dataset's embeddings: what each task computes once items are embedded.

Each function takes an `EvalDataset` and the embeddings of its items (rows aligned with `ds.items`), plus a text
encoder where prompts or captions are needed, and returns a metrics dict (percentages).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bindkit.evaluate.arithmetic import fuse
from bindkit.evaluate.fewshot import few_shot, settings_for
from bindkit.evaluate.readers.base import EvalDataset
from bindkit.evaluate.retrieval import caption_retrieval, flatten_captions, retrieval
from bindkit.evaluate.zeroshot import EncodeText, class_embeddings, zero_shot


def scored_items(ds: EvalDataset) -> list[int]:
    """Positions of the items a zero-shot or retrieval score uses: the test split where one is marked."""
    if ds.splits is None:
        return list(range(len(ds)))
    return [i for i, s in enumerate(ds.splits) if s == "test"]


def zeroshot_protocol(ds: EvalDataset, emb: np.ndarray, encode_text: EncodeText, templates=None) -> dict:
    """Zero-shot metrics; ESC-50 style datasets with folds get per-fold results and their mean."""
    idx = scored_items(ds)
    if ds.labels is None:
        raise ValueError(f"{ds.name}: zero-shot classification needs labels ({ds.kind} dataset)")
    assert ds.prompt_names is not None  # EvalDataset.__post_init__ fills it from class_names
    class_emb, groups = class_embeddings(encode_text, ds.prompt_names, templates)
    multilabel = ds.kind == "multilabel"
    labels = [ds.labels[i] for i in idx]
    if ds.folds is None:
        out = zero_shot(emb[idx], labels, class_emb, groups, multilabel=multilabel)
        if not multilabel:
            out["chance"] = 100.0 / len(ds.class_names)
        return out
    folds = np.asarray([ds.folds[i] for i in idx])
    per = {int(f): zero_shot(emb[idx][folds == f], np.asarray(labels)[folds == f], class_emb, groups)
           for f in np.unique(folds)}  # fmt: skip
    out = {k: float(np.mean([m[k] for m in per.values()])) for k in next(iter(per.values())) if k != "n"}
    return out | {"n": len(idx), "chance": 100.0 / len(ds.class_names), "folds": per}


def retrieval_protocol(
    ds: EvalDataset, emb: np.ndarray, encode_text: EncodeText, ks: Sequence[int] = (1, 5, 10)
) -> dict:
    """Text->item and item->text Recall@K with every caption a query."""
    idx = scored_items(ds)
    if ds.captions is None:
        raise ValueError(f"{ds.name}: retrieval needs captions ({ds.kind} dataset)")
    texts, owner = flatten_captions([ds.captions[i] for i in idx])
    return caption_retrieval(emb[idx], encode_text(texts), owner, ks)


def fewshot_protocol(
    ds: EvalDataset, emb: np.ndarray, shots: Sequence[int] = (1, 2, 4, 8), seeds: Sequence[int] = (0, 1, 2)
) -> dict:
    """Linear probes: ESC-50 tests fold 1 and draws shots from folds 2-5; others use their train/test split."""
    if ds.folds is not None:
        test = np.asarray(ds.folds) == 1
        split = "fold 1 tested, folds 2-5 for shots"
    elif ds.splits is not None:
        test = np.asarray(ds.splits) == "test"
        split = "test split tested, train split for shots"
    else:
        raise ValueError(
            f"{ds.name}: few-shot needs a train/test split (train/ and test/ folders, or a split list)"
        )
    y = np.asarray(ds.labels)
    if test.all() or not test.any():
        raise ValueError(
            f"{ds.name}: few-shot needs both train and test items, got {int(test.sum())} test of {len(y)}"
        )
    out = few_shot(emb[~test], y[~test], emb[test], y[test], shots, seeds, settings_for(ds.modality))
    return out | {"split": split, "n_train_pool": int((~test).sum()), "n_test": int(test.sum())}


def fusion_protocol(
    ds: EvalDataset,
    emb_a: np.ndarray,
    emb_b: np.ndarray,
    encode_text: EncodeText,
    weights=(0.95, 0.05),
    ks=(1, 5, 10),
) -> dict:
    """Retrieval against per-item fusions of two embeddings of the same items (video + audio)."""
    out = retrieval_protocol(ds, fuse(emb_a, emb_b, weights).numpy(), encode_text, ks)
    return out | {"weights": list(weights)}


def pair_protocol(
    ds_q: EvalDataset, emb_q: np.ndarray, ds_g: EvalDataset, emb_g: np.ndarray, ks=(1, 5, 10)
) -> dict:
    """Cross-modal retrieval between two labelled sets; a gallery item is relevant when its class name matches."""
    iq, ig = scored_items(ds_q), scored_items(ds_g)
    if ds_q.labels is None or ds_g.labels is None:
        raise ValueError(f"{ds_q.name} / {ds_g.name}: cross-modal retrieval by class needs labels on both")
    yq = np.asarray([ds_q.class_names[ds_q.labels[i]] for i in iq])
    yg = np.asarray([ds_g.class_names[ds_g.labels[i]] for i in ig])
    rel = yq[:, None] == yg[None, :]
    lonely = np.nonzero(~rel.any(1))[0]
    if len(lonely):
        raise ValueError(
            f"{len(lonely)} queries have a class absent from the gallery, e.g. {yq[lonely[0]]!r}"
        )
    out = retrieval(emb_q[iq], emb_g[ig], rel, ks)
    return out | {"query": ds_q.modality, "gallery": ds_g.modality}

"""int8 accuracy on a demo run: zero-shot top-1 and R@1 per modality, OpenVINO int8 against PyTorch bf16.

The demo's model is exported to OpenVINO twice (bf16, and int8 trunks calibrated by NNCF on --calibration-items
items of the digits world's train split, seed 1: other writers and voices than the test split's), then the run's
held-out test files are embedded by PyTorch bf16 (the CPU fast path), OpenVINO bf16 and OpenVINO int8 and scored as
the demo's report scores them: emergent zero-shot top-1 against the text prompts, and R@1 for every ordered pair of
modalities (relevant = same digit), averaged here over the pairs where the modality is the query.
Usage: python benchmarks/bench_int8.py RUN_DIR [--calibration-items 300] [--export-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import bindkit
from bindkit.data import tokenize
from bindkit.demo import scores
from bindkit.demo.files import SCORED, read_split
from bindkit.evaluate import zero_shot
from bindkit.runtime.backends import load_exported
from bindkit.runtime.export import export_path


def embed_all(model, test, captions: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Test-split embeddings of every scored modality plus captions, and the digit class embeddings."""
    emb = {m: scores.embed(model, m, test.inputs[m], batch=32) for m in SCORED}
    ctx = model.config.encoders["text"].input_shape[0]
    emb["text"] = scores.embed(model, "text", tokenize(captions, context_length=ctx), batch=32)
    return emb, scores.class_embeddings(model)


def table(emb: dict[str, torch.Tensor], cls: torch.Tensor, y: np.ndarray) -> dict[str, dict[str, float]]:
    """Per modality: zero-shot top-1 (%) and mean R@1 (%) over the pairs it queries."""
    ret = scores.retrieval_matrix(emb, y, ks=(1,))
    out = {}
    for m in SCORED:
        r1 = [v["R@1"] for k, v in ret.items() if k.startswith(f"{m}->")]
        out[m] = {"top1": zero_shot(emb[m], y, cls)["top1"], "R@1": float(np.mean(r1))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="a demo run directory (model/, test/)")
    ap.add_argument("--calibration-items", type=int, default=300)
    ap.add_argument("--export-dir", type=Path, help="where the exports go (default: a temporary folder)")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    torch.manual_seed(0)
    model_dir = a.run / "model"
    base = bindkit.load_model(model_dir, dtype=torch.bfloat16).pack_for_cpu()
    test = read_split(a.run / "test" / "manifest.jsonl", base.config)
    y, captions = test.digits, [r["caption"] for r in test.rows]
    root = a.export_dir or Path(tempfile.mkdtemp(prefix="bench-int8-"))
    results, seconds = {}, {}
    for name, precision in [("torch-bf16", None), ("openvino-bf16", "bf16"), ("openvino-int8", "int8")]:
        model = base
        if precision is not None:
            t = time.perf_counter()
            out = export_path(model_dir, root / precision, "openvino", precision=precision,
                              calibration_items=a.calibration_items)  # fmt: skip
            seconds[name] = time.perf_counter() - t
            model = load_exported(out, "openvino")
        results[name] = table(*embed_all(model, test, captions), y)
    print(f"demo run {a.run} ({len(y)} test items); int8 calibrated on {a.calibration_items} digits-world items")
    print(f"{'modality':8} " + " ".join(f"{n + ' top1':>20} {n + ' R@1':>19}" for n in results))
    for m in SCORED:
        print(f"{m:8} " + " ".join(f"{r[m]['top1']:20.1f} {r[m]['R@1']:19.1f}" for r in results.values()))
    ref, q = results["torch-bf16"], results["openvino-int8"]
    drops = {m: {"top1": ref[m]["top1"] - q[m]["top1"], "R@1": ref[m]["R@1"] - q[m]["R@1"]} for m in SCORED}
    print("int8 drop vs torch bf16 (points): " + ", ".join(f"{m} {d['top1']:+.1f}/{d['R@1']:+.1f}"
                                                            for m, d in drops.items()))  # fmt: skip
    print(f"export seconds: {seconds}")
    if a.json:
        a.json.write_text(json.dumps({"results": results, "drops": drops, "export_s": seconds}, indent=1))


if __name__ == "__main__":
    main()

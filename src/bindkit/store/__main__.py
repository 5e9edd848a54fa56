"""`python -m bindkit.store embed|search ...`: the store without the full CLI, e.g. under torchrun:

torchrun --nproc_per_node 2 -m bindkit.store embed photos/ --store db/ --model runs/demo/latest/model
"""

from __future__ import annotations

import argparse

from bindkit.store.embed import embed_paths
from bindkit.store.search import search


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and run `embed_paths` or `search`."""
    ap = argparse.ArgumentParser(prog="python -m bindkit.store")
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="embed folders, files and manifests into a store")
    e.add_argument("paths", nargs="+")
    e.add_argument("--store", required=True)
    e.add_argument("--model", required=True, help="a folder written by bindkit.save_model")
    e.add_argument("--modality", default=None, help="the kind of files whose type allows it (e.g. thermal)")
    e.add_argument("--batch-size", type=int, default=32)
    e.add_argument("--no-progress", action="store_true")
    s = sub.add_parser("search", help="query a store")
    s.add_argument("--store", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--text", action="append", default=[])
    s.add_argument("--file", action="append", default=[])
    s.add_argument("--modalities", default=None, help="comma-separated kinds to return")
    s.add_argument("-k", type=int, default=10)
    a = ap.parse_args(argv)
    if a.cmd == "embed":
        report = embed_paths(a.paths, a.store, a.model, a.modality, a.batch_size, progress=not a.no_progress)
        _finish(report)
        return
    queries = [("text", t, 1.0) for t in a.text] + [("file", f, 1.0) for f in a.file]
    kinds = a.modalities.split(",") if a.modalities else None
    for h in search(a.store, a.model, queries, kinds, a.k):
        print(f"{h.score:.4f}  {h.modality:8s} {h.path}")


def _finish(report) -> None:
    """Print the report once (rank 0 under torchrun) and leave the process group."""
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    if rank == 0:
        print(report.summary())
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()

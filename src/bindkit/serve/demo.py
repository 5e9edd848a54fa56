"""Where `bindkit serve` finds the latest demo run when given no model: its model and its test split as files.

Contract with `bindkit demo` (documented in docs/search.md): a run directory holds `model/` (written by
`bindkit.save_model`) and `test/manifest.jsonl`, one line per test-split file with `path` (relative to the
manifest), `modality` and `label` (the digit). `runs/demo/latest` under the cache folder points at the newest run.
The store is `store/` inside the run, built from the manifest on first start and reused afterwards.
"""

from __future__ import annotations

from pathlib import Path

from bindkit.hub import default_cache_dir


def latest_demo_run(cache_dir: str | Path | None = None) -> Path:
    """The folder `runs/demo/latest` resolves to (raises with a hint when there is none)."""
    link = Path(cache_dir or default_cache_dir()) / "runs" / "demo" / "latest"
    if not link.exists():
        raise FileNotFoundError(
            f"no demo run at {link}: run `bindkit demo` first, or pass a model and a store"
        )
    return link.resolve()


def demo_paths(run_dir: str | Path | None = None) -> tuple[Path, Path, list[Path]]:
    """(model folder, store folder, [test manifest]) of a demo run (default: the latest)."""
    run = Path(run_dir) if run_dir else latest_demo_run()
    model, manifest = run / "model", run / "test" / "manifest.jsonl"
    for need in (model / "config.json", manifest):
        if not need.is_file():
            raise FileNotFoundError(f"demo run {run} lacks {need.relative_to(run)}; re-run `bindkit demo`")
    return model, run / "store", [manifest]

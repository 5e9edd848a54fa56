"""Where `bindkit serve` finds the latest demo run when given no model: its model and its test split as files.

Contract with `bindkit demo` (see docs/search.md): the run directory holds `model/` (written by `bindkit.save_model`,
its config carrying the loader constants in `preprocess`) and the test split written by `bindkit.worlds.to_files`
(a `manifest.jsonl` with one row per instance and its `files`), preferably as `test/manifest.jsonl`; any
`manifest.jsonl` under the run whose rows are of split `test`, or that lies in a folder named `test`, is found too.
`runs/demo/latest` under the cache folder points at the newest run. The store is `store/` inside the run, built from
the manifest on first start and only topped up afterwards.
"""

from __future__ import annotations

import json
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


def _is_test_manifest(path: Path, run: Path) -> bool:
    if "test" in path.relative_to(run).parts[:-1]:
        return True
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    try:
        return json.loads(first).get("split") == "test"
    except (ValueError, AttributeError):
        return False


def demo_paths(run_dir: str | Path | None = None) -> tuple[Path, Path, list[Path]]:
    """(model folder, store folder, [test-split manifest]) of a demo run (default: the latest)."""
    run = Path(run_dir).resolve() if run_dir else latest_demo_run()
    model = run / "model"
    if not (model / "config.json").is_file():
        raise FileNotFoundError(
            f"demo run {run} has no model/ (written by bindkit.save_model); re-run `bindkit demo`"
        )
    preferred = run / "test" / "manifest.jsonl"
    found = [preferred] if preferred.is_file() else [p for p in sorted(run.rglob("manifest.jsonl"))
                                                       if _is_test_manifest(p, run)]  # fmt: skip
    if not found:
        raise FileNotFoundError(f"demo run {run} has no test-split manifest.jsonl (bindkit.worlds.to_files)")
    return model, run / "store", found[:1]

"""`bindkit` command line: parse arguments, call one library function per subcommand."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path


def _example(a: argparse.Namespace) -> None:
    from bindkit.example import run_example

    run_example(a.config, a.batch)


def _download(a: argparse.Namespace) -> None:
    from bindkit.hub import IMAGEBIND_HUGE, download

    sha = None if a.no_verify else (a.sha256 or "")
    print(download(IMAGEBIND_HUGE, cache_dir=a.cache_dir, sha256=sha))


def _convert(a: argparse.Namespace) -> None:
    from bindkit.convert import convert

    print(convert(a.src, a.dst, config=a.config))


def _configs(a: argparse.Namespace) -> None:
    import json

    from bindkit.demo.settings import register_demo_config
    from bindkit.registry import get_config, list_configs

    register_demo_config()
    for name in list_configs():
        cfg = get_config(name)
        print(name if not a.verbose else json.dumps(cfg.to_dict(), indent=1))


def _train(a: argparse.Namespace) -> None:
    from bindkit.train import load_config, train

    cfg = load_config(a.config, resume=a.resume or None, run_dir=a.run_dir, steps=a.steps, device=a.device,
                      precision=a.precision, stop_after=a.stop_after, cache_dir=a.cache_dir,
                      progress=False if a.no_progress else None)  # fmt: skip
    result = train(cfg)
    print(f"run {result.run_dir}: step {result.step}/{result.total_steps}, model {result.model_dir}")


def _eval(a: argparse.Namespace) -> None:
    from bindkit.evaluate import run_eval

    options: dict[str, dict[str, str]] = {}
    for opt in a.option:
        task_key, _, value = opt.partition("=")
        task, _, key = task_key.partition(".")
        options.setdefault(task, {})[key] = value
    root = a.root[0] if len(a.root) == 1 else a.root
    modality = a.modality[0] if len(a.modality) == 1 else a.modality or None  # two only for a pair task
    dtype = {"bf16": "bfloat16", "fp32": "float32"}.get(a.dtype, a.dtype)
    run_eval(a.task, root, a.model, out=a.out, cache_dir=a.cache_dir, use_cache=not a.no_cache, device=a.device,
             dtype=getattr(__import__("torch"), dtype) if dtype else None, batch_size=a.batch_size,
             templates=a.templates, class_names=a.class_names, modality=modality, shots=a.shots,
             seeds=a.seeds, checkpoint=a.checkpoint, on_error=a.on_error, limit=a.limit,
             compare_paper=a.compare_paper or None, options=options or None)  # fmt: skip


def _embed(a: argparse.Namespace) -> None:
    import torch.distributed as dist

    from bindkit.store import embed_paths

    report = embed_paths(a.paths, a.store, a.model, modality=a.modality, batch_size=a.batch_size, device=a.device,
                         progress=not a.no_progress, follow_links=a.follow_links)  # fmt: skip
    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        print(report.summary())
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _search(a: argparse.Namespace) -> None:
    from bindkit.store import search

    queries = [("text", t, 1.0) for t in a.text] + [("file", f, 1.0) for f in a.file]
    if a.weight:
        if len(a.weight) != len(queries):
            raise ValueError(
                f"--weight has {len(a.weight)} values for {len(queries)} queries (texts, then files)"
            )
        queries = [(kind, value, w) for (kind, value, _), w in zip(queries, a.weight, strict=True)]
    if not queries:
        raise ValueError("give at least one --text or --file query")
    kinds = a.modalities.split(",") if a.modalities else None
    for h in search(a.store, a.model, queries, modalities=kinds, k=a.k, where=a.where):
        print(f"{h.score:.4f}  {h.modality:8s} {h.path}")


def _serve(a: argparse.Namespace) -> None:
    from bindkit.serve import serve

    serve(host=a.host, port=a.port, model_dir=a.model, store_dir=a.store, token=a.token, data=a.data or None,
          demo_run=a.demo_run, allowed_hosts=a.allow_host or None)  # fmt: skip


def _demo(a: argparse.Namespace) -> None:
    from bindkit.demo.run import run_demo

    result = run_demo(run_root=a.run_root, quick=a.quick, seed=a.seed, progress=not a.no_progress)
    print(result.report_md.read_text())
    print(f"run directory: {result.run_dir} ({result.seconds:.0f} s)")


def _args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick", action="store_true", help="a smaller world and shorter training (about 2 minutes)"
    )
    p.add_argument("--run-root", type=Path, help="where runs go (default ~/.cache/bindkit/runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def _args_example(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="imagebind_tiny")
    p.add_argument("--batch", type=int, default=2)


def _args_download(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--sha256", help="accept a file with this sha256 instead of the recorded one")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check")


def _args_convert(p: argparse.ArgumentParser) -> None:
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--config", default=None, help="for a .pth: a registered config name or a config.json "
                   "(default: the .config.json bindkit wrote beside it, else imagebind_huge)")  # fmt: skip


def _args_train(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config", type=Path, required=True, help="a TrainConfig JSON file (see docs/training.md)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue exactly from the run directory's last checkpoint"
    )
    p.add_argument("--run-dir")
    p.add_argument("--steps", type=int)
    p.add_argument("--device")
    p.add_argument("--precision", choices=["fp32", "bf16"])
    p.add_argument("--stop-after", type=int, help="checkpoint and stop after this many steps")
    p.add_argument("--cache-dir", help="where frozen anchor embeddings are cached")
    p.add_argument("--no-progress", action="store_true")


def _args_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("--task", action="append", required=True, help="esc50, clotho, audiocaps, nyud, sund, llvip, "
                   "ego4d, msrvtt, audioset, vggsound, folder, ... (repeat for a Table 2 layout)")  # fmt: skip
    p.add_argument(
        "--root", action="append", required=True, type=Path, help="dataset folder (repeat per task)"
    )
    p.add_argument(
        "--model", required=True, help="imagebind_huge, a bindkit model folder, or an official .pth"
    )
    p.add_argument("--out", type=Path, default=Path("eval_results.json"))
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["fp32", "bf16"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--templates", help="a file of prompt templates with {} (default: the 80 CLIP templates)")
    p.add_argument("--class-names", help="a file of class names (one per line)")
    p.add_argument("--modality", action="append", default=[])
    p.add_argument("--shots", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--checkpoint", type=Path, help="official .pth for --model imagebind_huge")
    p.add_argument("--on-error", choices=["raise", "skip"], default="raise")
    p.add_argument("--limit", type=int, help="evaluate only the first N items per task")
    p.add_argument("--compare-paper", action="store_true", help="print the paper's numbers beside ours")
    p.add_argument("--option", action="append", default=[], help="TASK.KEY=VALUE passed to a task's reader")


def _args_embed(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="files, folders or manifests (.jsonl/.csv)")
    p.add_argument("--store", required=True)
    p.add_argument("--model", required=True, help="a bindkit model folder (e.g. a demo run's model/)")
    p.add_argument("--modality", help="force the modality where a file is ambiguous (e.g. thermal)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--follow-links", action="store_true",
                   help="follow symbolic links that lead out of a given folder (default: list them as skipped)")  # fmt: skip


def _args_search(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--text", action="append", default=[])
    p.add_argument("--file", action="append", default=[])
    p.add_argument("--weight", type=float, action="extend", nargs="+", default=[],
                   help="one weight per query, texts first then files (embedding arithmetic): "
                   "--weight 0.5 1 or --weight 0.5 --weight 1")  # fmt: skip
    p.add_argument("--modalities", help="comma-separated kinds to return, e.g. image,depth")
    p.add_argument("--where", help="a metadata filter, e.g. \"label = '7'\"")
    p.add_argument("-k", type=_positive, default=10, help="how many results (at least 1)")


def _args_serve(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="bind address; anything but loopback requires --token")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=Path)
    p.add_argument("--store", type=Path)
    p.add_argument("--token")
    p.add_argument("--allow-host", action="append", help="a Host name clients use (repeatable); default: "
                   "loopback names without --token, any name with it (docs/search.md)")  # fmt: skip
    p.add_argument("--data", nargs="*", help="files or folders to embed into the store on start")
    p.add_argument("--demo-run", type=Path, help="a demo run directory (default: the latest)")


def _args_configs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--verbose", "-v", action="store_true")


COMMANDS: list[tuple[str, Callable[[argparse.Namespace], None], Callable[[argparse.ArgumentParser], None], str]] = [
    ("demo", _demo, _args_demo, "the paper end to end on a generated six-modality world, offline, on the CPU"),
    ("example", _example, _args_example, "embed generated inputs of every modality with a small random model"),
    ("download", _download, _args_download, "fetch the official imagebind_huge.pth into the cache (resumable)"),
    ("convert", _convert, _args_convert, "convert official .pth <-> bindkit folder (safetensors + config.json)"),
    ("train", _train, _args_train, "bind a modality to a frozen image-text space (or train an anchor) from a config",),
    ("eval", _eval, _args_eval, "run the paper's protocols on benchmark folders or any labelled folder"),
    ("embed", _embed, _args_embed, "embed files of any modality into a LanceDB store (resumable, idempotent)"),
    ("search", _search, _args_search, "query a store with text, files of any modality, or a weighted sum of them"),
    ("serve", _serve, _args_serve, "the search service and web page (default: the latest demo run)"),
    ("configs", _configs, _args_configs, "list the registered model configs"),
]  # fmt: skip


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: one subcommand per entry of COMMANDS."""
    ap = argparse.ArgumentParser(
        prog="bindkit", description="ImageBind: one embedding space for six modalities."
    )
    debug = dict(action="store_true", help="show the traceback of an error")
    ap.add_argument("--debug", **debug)  # type: ignore[arg-type]
    sub = ap.add_subparsers(dest="command", required=True)
    for name, fn, add_args, help_ in COMMANDS:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        p.add_argument("--debug", default=argparse.SUPPRESS, **debug)  # type: ignore[arg-type]
        add_args(p)
    return ap


# Errors a user can cause and fix (bad arguments, unreadable or missing files, refusals, no network); anything
# else is a bug and keeps its traceback. LoadError and DetectError are ValueErrors; URLError is an OSError.
EXPECTED_ERRORS = (ValueError, OSError, KeyError)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `bindkit` command: expected errors are one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        args.fn(args)
        sys.stdout.flush()  # a closed pipe (`bindkit configs | head -1`) fails here, inside the handler
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        raise SystemExit(141) from None  # 128 + SIGPIPE, as a shell reports a killed writer
    except EXPECTED_ERRORS as e:
        if args.debug:
            raise
        reason = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"bindkit: error: {reason}", file=sys.stderr)
        raise SystemExit(1) from None

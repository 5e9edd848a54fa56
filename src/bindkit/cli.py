"""`bindkit` command line: parse arguments, call one library function per subcommand."""

from __future__ import annotations

import argparse
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

    from bindkit.registry import get_config, list_configs

    for name in list_configs():
        cfg = get_config(name)
        print(name if not a.verbose else json.dumps(cfg.to_dict(), indent=1))


def _add(sub, name: str, fn: Callable, help: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help)
    p.set_defaults(fn=fn)
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    ap = argparse.ArgumentParser(prog="bindkit", description="ImageBind: one embedding space for six modalities.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = _add(sub, "example", _example, "embed generated inputs of every modality with a small random model")
    p.add_argument("--config", default="imagebind_tiny")
    p.add_argument("--batch", type=int, default=2)
    p = _add(sub, "download", _download, "fetch the official imagebind_huge.pth into the cache (resumable)")
    p.add_argument("--cache-dir", type=Path)
    p.add_argument("--sha256", help="accept a file with this sha256 instead of the recorded one")
    p.add_argument("--no-verify", action="store_true", help="skip the sha256 check")
    p = _add(sub, "convert", _convert, "convert official .pth <-> bindkit folder (safetensors + config.json)")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--config", default=None, help="registered config of an official .pth (default imagebind_huge)")
    p = _add(sub, "configs", _configs, "list the registered model configs")
    p.add_argument("--verbose", "-v", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `bindkit` command."""
    args = build_parser().parse_args(argv)
    args.fn(args)

"""`bindkit` command line: parse arguments, call one library function per subcommand."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from bindkit.flags import add_flags, from_flags


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


def _train(a: argparse.Namespace) -> None:
    from bindkit.process import backend_for, distributed, stop_on
    from bindkit.train import load_config, train

    cfg = load_config(a.config, resume=a.resume or None, run_dir=a.run_dir, steps=a.steps, device=a.device,
                      precision=a.precision, stop_after=a.stop_after, cache_dir=a.cache_dir,
                      progress=False if a.no_progress else None)  # fmt: skip
    with distributed(backend_for(cfg.device)), stop_on(signal.SIGTERM) as stop:  # SIGTERM: checkpoint and stop
        result = train(cfg, stop=stop)
    print(f"run {result.run_dir}: step {result.step}/{result.total_steps}, model {result.model_dir}")


def _eval(a: argparse.Namespace) -> None:
    from bindkit.evaluate import EvalConfig, run_eval

    run_eval(from_flags(EvalConfig, a))


def _embed(a: argparse.Namespace) -> None:
    from bindkit.process import distributed
    from bindkit.store import embed_paths

    with distributed("gloo") as ranks:  # under torchrun: rank 0 plans, every rank embeds its share
        report = embed_paths(a.paths, a.store, a.model, modality=a.modality, batch_size=a.batch_size,
                             device=a.device or ranks.device(), progress=not a.no_progress,
                             follow_links=a.follow_links, rank=ranks.rank, world=ranks.world,
                             backend=a.backend)  # fmt: skip
    if ranks.rank == 0:
        print(report.summary())


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
    for h in search(a.store, a.model, queries, modalities=kinds, k=a.k, where=a.where, backend=a.backend):
        print(f"{h.score:.4f}  {h.modality:8s} {h.path}")


def _serve(a: argparse.Namespace) -> None:
    from bindkit.serve import serve

    serve(host=a.host, port=a.port, model=a.model, store_dir=a.store, token=a.token, data=a.data or None,
          demo_run=a.demo_run, allowed_hosts=a.allow_host or None, backend=a.backend)  # fmt: skip


def _export(a: argparse.Namespace) -> None:
    from bindkit.runtime.export import export_path

    print(export_path(a.model, a.out, a.format, a.modalities, a.precision, a.calibration, a.calibration_items))


def _generate(a: argparse.Namespace) -> None:
    from bindkit.apps import generate

    queries = a.queries or []
    if not queries:
        raise SystemExit("give at least one query: --text, --file, --image, --audio, --depth, --thermal, --imu")
    if a.weight:
        if len(a.weight) != len(queries):
            raise SystemExit(f"--weight given {len(a.weight)} times for {len(queries)} queries (in command-line order)")
        queries = [(kind, value, w) for (kind, value, _), w in zip(queries, a.weight, strict=True)]
    generate(a.model, queries, a.pipeline, out=a.out, steps=a.steps, seed=a.seed, num_images=a.num_images,
             guidance=a.guidance, scale="auto" if a.scale is None else a.scale, noise_level=a.noise_level,
             prompt=a.prompt, prior=a.prior)  # fmt: skip
    for i in range(a.num_images):
        print(a.out / f"{a.seed}-{i}.png")


def _demo(a: argparse.Namespace) -> None:
    from bindkit.demo.run import DemoStopped, apps_only, run_demo
    from bindkit.process import stop_on

    if a.on_run:
        result = apps_only(a.on_run)
    else:
        try:
            with stop_on(signal.SIGTERM) as stop:  # SIGTERM: the training stage checkpoints, the demo stops cleanly
                result = run_demo(run_root=a.run_root, quick=a.quick, seed=a.seed, progress=not a.no_progress,
                                  apps=True if a.apps else None, train_anchor=True if a.train_anchor else None,
                                  stop=stop, anchor=a.anchor)  # fmt: skip
        except DemoStopped as e:
            raise SystemExit(f"bindkit demo: {e}") from None
    print(result.report_md.read_text())
    print(f"run directory: {result.run_dir} ({result.seconds:.0f} s)")


def _args_demo(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--quick", action="store_true", help="a smaller world and shorter training (about 2 minutes)"
    )
    p.add_argument("--run-root", type=Path, help="where runs go (default ~/.cache/bindkit/runs/demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--apps", action="store_true", help="also run the applications stage (locate, detect, generate)")
    p.add_argument("--train-anchor", action="store_true",
                   help="train the image-text anchor from scratch instead of loading the shipped pretrained one")
    p.add_argument("--anchor", type=Path, metavar="DIR",
                   help="bind to this pretrained anchor folder (scripts/train_demo_anchor.py --out DIR) instead of the shipped one")
    p.add_argument("--on-run", type=Path, metavar="RUN_DIR",
                   help="only run the applications stage on an existing run directory, and update its report")


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
    from bindkit.evaluate.config import EvalConfig

    add_flags(p, EvalConfig)


def _args_embed(p: argparse.ArgumentParser) -> None:
    _backend(p)
    p.add_argument("paths", nargs="+", help="files, folders or manifests (.jsonl/.csv)")
    p.add_argument("--store", required=True)
    p.add_argument("--model", required=True, help="a bindkit model folder (e.g. a demo run's model/) or an official .pth")
    p.add_argument("--modality", help="force the modality where a file is ambiguous (e.g. thermal)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--follow-links", action="store_true",
                   help="follow symbolic links that lead out of a given folder (default: list them as skipped)")  # fmt: skip


def _args_search(p: argparse.ArgumentParser) -> None:
    _backend(p)
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
    _backend(p)
    p.add_argument("--host", default="127.0.0.1", help="bind address; anything but loopback requires --token")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=Path)
    p.add_argument("--store", type=Path)
    p.add_argument("--token")
    p.add_argument("--allow-host", action="append", help="a Host name clients use (repeatable); default: "
                   "loopback names without --token, any name with it (docs/search.md)")  # fmt: skip
    p.add_argument("--data", nargs="*", help="files or folders to embed into the store on start")
    p.add_argument("--demo-run", type=Path, help="a demo run directory (default: the latest)")


def _backend(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["torch", "openvino", "onnxruntime"], default="torch",
                   help="run the model on PyTorch, or compiled once (cached) on OpenVINO / ONNX Runtime")  # fmt: skip


def _args_export(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="a bindkit model folder, or an official .pth (imagebind_huge)")
    p.add_argument("out", type=Path, help="the export folder (one file per encoder and manifest.json)")
    p.add_argument("--format", choices=["onnx", "openvino"], default="onnx")
    p.add_argument("--modalities", nargs="+", help="encoders to export (default: all)")
    p.add_argument("--precision", choices=["fp32", "bf16", "int8"], default="fp32",
                   help="onnx: fp32 only; openvino: bf16 compute, or int8 trunks (NNCF, calibrated)")  # fmt: skip
    p.add_argument("--calibration", nargs="+", type=Path,
                   help="int8: files or folders of the exported modalities (default: the demo's digits world)")  # fmt: skip
    p.add_argument("--calibration-items", type=int, default=300, help="int8: calibration items per modality")


def _locate(a: argparse.Namespace) -> None:
    import json

    from bindkit.apps.files import run_locate

    file, modality = (a.audio, "audio") if a.audio else (a.file, a.modality)
    answer = run_locate(a.model, a.image, a.out, text=a.text, file=file, modality=modality, size=a.size,
                        threshold=a.threshold, method=a.method)  # fmt: skip
    print(json.dumps({k: answer[k] for k in ("peak", "boxes")}))


def _args_locate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a bindkit model folder (e.g. a demo run's model/)")
    p.add_argument("--image", required=True)
    q = p.add_mutually_exclusive_group(required=True)
    q.add_argument("--audio", help="a sound file to find")
    q.add_argument("--text", help="a text to find")
    q.add_argument("--file", help="a file of any modality to find (kind detected, or --modality)")
    p.add_argument("--modality", help="the --file's modality where detection is ambiguous (e.g. thermal)")
    p.add_argument("--out", required=True, type=Path, help="folder for <image>.locate.png and .json")
    p.add_argument("--size", type=int, help="model pixels per side (default: the model's input size)")
    p.add_argument("--threshold", type=float, default=0.5, help="box threshold, a share of the map's range")
    p.add_argument("--method", default="value", choices=("value", "value-mlp", "tokens", "local", "crops"),
                   help="dense method (bindkit.dense): value = one pass (CLIP-scale models); crops = sliding crops")


def _detect(a: argparse.Namespace) -> None:
    import json

    from bindkit.apps.files import run_detect

    texts = [t.strip() for t in a.classes.split(",") if t.strip()] if a.classes is not None else None
    answer = run_detect(a.model, a.detector, a.image, a.out, texts=texts, files=a.class_file or None,
                        threshold=a.threshold)  # fmt: skip
    print(json.dumps(answer["detections"]))


def _args_detect(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="the bindkit model folder the detector was trained on")
    p.add_argument("--detector", required=True, help="a detector folder (a detector run's detector/)")
    p.add_argument("--image", required=True)
    p.add_argument("--classes", help="comma-separated class texts replacing the detector's classes")
    p.add_argument("--class-file", action="append", metavar="NAME=PATH",
                   help="a class given by a file of any modality (a spoken word, an IMU trace...); repeatable")  # fmt: skip
    p.add_argument("--out", required=True, type=Path, help="folder for <image>.detect.png and .json")
    p.add_argument("--threshold", type=float, default=0.3, help="minimum score (objectness x class probability)")


def _query(kind: str) -> Callable[[str], tuple[str, str, float]]:
    """An argparse `type` turning a flag's value into a (kind, value, weight 1) query."""
    return lambda v: (kind, v, 1.0)


def _args_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="a bindkit model folder (e.g. imagebind_huge converted, a demo run's model/)")
    for kind in ("text", "file", "image", "audio", "depth", "thermal", "imu", "video"):
        p.add_argument(f"--{kind}", dest="queries", action="append", type=_query(kind),
                       help=f"a {kind} query" if kind != "file" else "a file of any modality (detected)")  # fmt: skip
    p.add_argument("--weight", type=float, action="append", default=[],
                   help="one weight per query, in command-line order (embedding arithmetic)")  # fmt: skip
    p.add_argument("--pipeline", required=True, type=Path,
                   help="a local Stable unCLIP pipeline folder, or a bindkit decoder folder (a demo run's model/decoder)")
    p.add_argument("--out", required=True, type=Path, help="folder for the PNGs (<seed>-<i>.png)")
    p.add_argument("--steps", type=int, help="denoising steps (default: the decoder's, or 30)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=1)
    p.add_argument("--guidance", type=float, help="classifier-free guidance scale (default: the generator's)")
    p.add_argument("--scale", type=float, help="norm given to the embedding (default: the norm the pipeline expects)")
    p.add_argument("--noise-level", type=int, default=0, help="Stable unCLIP's noise on the embedding (0 = none)")
    p.add_argument("--prompt", default="", help="Stable unCLIP's text prompt beside the embedding (default empty)")
    p.add_argument("--prior", action="store_true",
                   help="move each query term by the mean shift of the decoder's prior.safetensors (bindkit.apps.prior)")  # fmt: skip


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
    ("generate", _generate, _args_generate, "draw images from an embedding of any modality (unCLIP or a bindkit decoder)"),
    ("serve", _serve, _args_serve, "the search service and web page (default: the latest demo run)"),
    ("locate", _locate, _args_locate, "where in an image a sound, a text or a file of any modality matches"),
    ("detect", _detect, _args_detect, "detect with a detector whose classes can be texts or files of any modality"),
    ("configs", _configs, _args_configs, "list the registered model configs"),
    ("export", _export, _args_export, "export encoders to ONNX or OpenVINO (fp32, bf16, int8) with a manifest"),
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
    from bindkit.demo.settings import register_demo_config

    args = build_parser().parse_args(argv)
    register_demo_config()  # every subcommand that takes a config name knows the demo's, as `configs` lists it
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
        print(f"bindkit: error: {_one_line(str(reason))}", file=sys.stderr)
        raise SystemExit(1) from None


def _one_line(text: str) -> str:
    """A message of several lines (a LoadError lists one bad item per line) as one line, items joined by '; '."""
    head, *items = text.splitlines() or [""]
    return " ".join([head, "; ".join(line.strip() for line in items if line.strip())]).strip()

"""`run_demo`: build the digits world, train the anchor, bind four modalities through images, train the text-paired
comparison, score everything on held-out writers and voices, and write the run directory.

Run directory (default `<cache>/runs/demo/<YYYYmmdd-HHMMSS>`, cache = `$XDG_CACHE_HOME/bindkit` or
`~/.cache/bindkit`; `<root>/latest` points at the newest run):

    model/                 bindkit.save_model: the six encoders (anchor image + text, bound audio/depth/thermal/imu)
    text_paired/model/     the comparison encoders (audio/depth/thermal/imu trained with text pairs; full preset)
    test/                  the test split as files (bindkit.worlds.to_files) + manifest.jsonl, for `bindkit serve`
    model/decoder/         the applications stage's unCLIP decoder (`bindkit generate --pipeline`)
    report.md, report.json the tables and every figure
    plots/                 training.png, zero_shot.png, retrieval.png
    train/{anchor,bind,text_paired}/   the training runs (config, metrics.jsonl, plots, final model)
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from bindkit.checkpoint import load_model, save_model
from bindkit.data import tokenize
from bindkit.hub import default_cache_dir
from bindkit.model import ImageBind
from bindkit.train.build import set_encoder_config
from bindkit.train.engine import RunResult

from . import report, robustness, scores
from .anchor import pretrained_anchor_stage
from .arithmetic import arithmetic_target
from .data import DemoData, build_data
from .files import SCORED, Split, read_split, write_splits
from .settings import BOUND, PRESETS, DemoSettings, demo_config
from .training import train_anchor as train_anchor_run
from .training import train_bound

STAGES = ("world", "anchor", "bind", "text-paired", "files", "evaluate", "applications", "report")


@dataclass
class DemoResult:
    """Where a demo run wrote its outputs, and its figures (the content of report.json)."""

    run_dir: Path
    model_dir: Path
    report_md: Path
    report_json: Path
    test_manifest: Path
    report: dict[str, Any]
    seconds: float


def default_run_root() -> Path:
    """`<cache>/runs/demo`: where demo runs go unless told otherwise (never the working directory)."""
    return default_cache_dir() / "runs" / "demo"


def new_run_dir(root: Path) -> Path:
    """A fresh `<root>/<YYYYmmdd-HHMMSS>` folder (suffixed `-2`, `-3`, ... when taken)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    path, k = root / stamp, 1
    while path.exists():
        k += 1
        path = root / f"{stamp}-{k}"
    path.mkdir(parents=True)
    return path


def point_latest(root: Path, run_dir: Path) -> Path:
    """Make `<root>/latest` a relative symlink to `run_dir` (atomically); where symlinks fail, a text file
    holding the run folder's name. Returns the pointer."""
    link, tmp = root / "latest", root / f".latest-{os.getpid()}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:
        tmp.unlink(missing_ok=True)
        if link.is_symlink() or link.is_file():
            link.unlink()
        link.write_text(run_dir.name + "\n")
    return link


def latest_run(root: Path | None = None) -> Path:
    """The newest demo run under `root` (default `default_run_root()`), via its `latest` symlink or text file."""
    link = (root or default_run_root()) / "latest"
    if link.is_symlink() or link.is_dir():
        return link.resolve()
    if link.is_file():
        return link.parent / link.read_text().strip()
    raise FileNotFoundError(f"no demo run under {link.parent}: run `bindkit demo` first")


class DemoStopped(RuntimeError):
    """A training stage was stopped (its `stop` event was set) before it finished; it left a checkpoint."""


def run_demo(run_root: Path | None = None, quick: bool = False, seed: int = 0, progress: bool = True,
             settings: DemoSettings | None = None, apps: bool | None = None, train_anchor: bool | None = None,
             stop: threading.Event | None = None, anchor: Path | None = None) -> DemoResult:  # fmt: skip
    """Run the whole demo offline and write its run directory; `settings` overrides the full/quick preset, `apps`
    the preset's choice of the applications stage, `train_anchor` its choice between training the image-text
    anchor from scratch and loading the shipped pretrained one (`bindkit.demo.anchor`), `anchor` binds to another
    pretrained anchor folder instead of the shipped one.

    Setting `stop` (e.g. from `bindkit.process.stop_on(SIGTERM)`) ends the current training stage at a checkpoint
    and raises `DemoStopped` naming the stage; later stages never start."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    s = _chosen_settings(settings or PRESETS["quick" if quick else "full"], train_anchor, anchor)
    root = Path(run_root).expanduser() if run_root is not None else default_run_root()
    run = new_run_dir(root)
    clock, load0, t0 = Clock(), _load(), time.perf_counter()
    apps = s.applications if apps is None else apps
    skipped = (not apps) + (s.text_paired is None)
    bar = tqdm(total=len(STAGES) - skipped, desc="bindkit demo", unit="stage", disable=not progress, position=0)
    with clock.stage("world", bar):
        n_anchor = s.n_anchor if s.train_anchor else s.n_train  # a pretrained anchor needs no extra frames
        data = build_data(demo_config(), n_anchor, s.n_train, s.n_test, s.n_probe_pool, seed)
    bound, paired = _train(s, data, run, seed, progress, stop, clock, bar)
    with clock.stage("files", bar):
        model_dir = save_demo_model(bound, data, run / "model")
        if paired is not None:
            save_demo_model(paired, data, run / "text_paired" / "model")
        paths = write_splits(data, run)
        _tidy(run)
    with clock.stage("evaluate", bar):
        test, probe = (read_split(paths[k], bound.config) for k in ("test", "probe"))
        result = evaluate(bound, paired, test, probe, s) | _input_rows(bound, data, test, paths["test"], seed)
    if apps:
        with clock.stage("applications", bar):
            result["applications"] = run_applications(run, s, seed, bound)
    with clock.stage("report", bar):
        result |= {"settings": _settings(s, seed, data), "timings_s": clock.times, "run_dir": str(run),
                   "load_average": {"start": load0, "end": _load()}, "targets": targets(result)}  # fmt: skip
        out = write_report(result, run)
    bar.close()
    result["timings_s"]["total"] = time.perf_counter() - t0
    report.write_json(result, out["json"])
    report.write_markdown(result, out["md"])
    point_latest(root, run)
    return DemoResult(
        run, model_dir, out["md"], out["json"], paths["test"], result, result["timings_s"]["total"]
    )


def _chosen_settings(s: DemoSettings, train_anchor: bool | None, anchor: Path | None) -> DemoSettings:
    """The preset with the caller's anchor choice: trained from scratch, or another pretrained anchor folder."""
    if train_anchor is not None:
        s = replace(s, train_anchor=train_anchor)
    if anchor is None:
        return s
    if s.train_anchor:
        raise ValueError("a pretrained anchor folder (anchor=, --anchor) and training one (train_anchor=True, --train-anchor) "
                         "exclude each other")
    if not (Path(anchor) / "recipe.json").is_file():
        raise FileNotFoundError(f"{anchor}: not a demo anchor folder (no recipe.json; see scripts/train_demo_anchor.py)")
    return replace(s, anchor_dir=str(Path(anchor).expanduser().resolve()))


def _train(s: DemoSettings, data: DemoData, run: Path, seed: int, progress: bool, stop: threading.Event | None,
           clock: Clock, bar: tqdm) -> tuple[ImageBind, ImageBind | None]:  # fmt: skip
    """The anchor (trained or the shipped one), binding and text-paired stages: (bound model, text-paired model or
    None where the preset has no text-paired run)."""
    with clock.stage("anchor", bar):
        if s.train_anchor:
            anchor, _ = _finished("anchor", train_anchor_run(data.train_inputs, s.anchor, run / "train" / "anchor",
                                                             seed, progress, stop))  # fmt: skip
        else:
            folder = Path(s.anchor_dir) if s.anchor_dir else None
            anchor = pretrained_anchor_stage(run / "train" / "anchor", folder)
    with clock.stage("bind", bar):
        _, bound = _finished("bind", train_bound(data.train_inputs, anchor, s.bind, run / "train" / "bind", seed,
                                                 progress, stop=stop))  # fmt: skip
    if s.text_paired is None:
        return bound, None
    with clock.stage("text-paired", bar):
        _, paired = _finished("text-paired", train_bound(data.train_inputs, anchor, s.text_paired,
                                                         run / "train" / "text_paired", seed, progress, "text", stop))  # fmt: skip
    return bound, paired


def _input_rows(model: ImageBind, data: DemoData, test: Split, manifest: Path, seed: int) -> dict[str, Any]:
    """The scores over the forms of input a user brings: video per clip (from the test files) and audio robustness."""
    classes = scores.class_embeddings(model)
    files = [manifest.parent / r["files"]["video"] for r in test.rows]
    return {
        "video": scores.video_clip_table(model, files, classes, test.digits, data.world.window_seconds),
        "audio_robustness": robustness.audio_robustness(model, classes, data.test, data.engine_test, seed),
    }


def _finished(stage: str, result: RunResult) -> tuple[Path, ImageBind]:
    """(saved model folder, trained model) of a stage that ran to the end; `DemoStopped` naming it otherwise."""
    if result.stopped or result.model_dir is None or result.model is None:
        raise DemoStopped(f"stopped during stage {stage!r} at step {result.step}/{result.total_steps}; its "
                          f"checkpoint is {result.checkpoint}; later stages did not run ({result.run_dir.parent})")
    return result.model_dir, result.model


def run_applications(run: Path, s: DemoSettings, seed: int, model: ImageBind | None = None) -> dict[str, Any]:
    """The applications stage on a run directory with model/, test/ (and report.json): {application: scores}."""
    from .apps_detect import DetectSettings
    from .apps_generate import run_stage as generate_stage
    from .apps_locate import LocateSettings, locate_stage

    locate = locate_stage(run, LocateSettings(n_scenes=s.scenes, seed=seed), model, DetectSettings())
    detect = locate.pop("detect")
    if model is None:
        model = load_model(run / "model", device="cpu").eval()
    return {"locate": locate, "detect": detect, "generate": generate_stage(run, model, s.name, seed, progress=False)}


def apps_only(run_dir: Path, quick: bool = False) -> DemoResult:
    """Run the applications stage on an existing demo run and rewrite its report.json and report.md."""
    run = Path(run_dir).expanduser().resolve()
    if not (run / "report.json").is_file() or not (run / "model").is_dir():
        raise FileNotFoundError(f"{run} is not a finished demo run (needs report.json and model/)")
    result = json.loads((run / "report.json").read_text())
    s = PRESETS["quick" if quick else result["settings"].get("preset", "full")]
    t0 = time.perf_counter()
    result["applications"] = run_applications(run, s, int(result["settings"]["seed"]))
    result["timings_s"]["applications"] = time.perf_counter() - t0
    out = {"json": report.write_json(result, run / "report.json"), "md": report.write_markdown(result, run / "report.md")}
    return DemoResult(run, run / "model", out["md"], out["json"], run / "test" / "manifest.jsonl", result,
                      result["timings_s"]["applications"])  # fmt: skip


class Clock:
    """Wall time per stage, and the stage shown on the progress bar."""

    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    def stage(self, name: str, bar: tqdm):
        clock = self

        class _Stage:
            def __enter__(self):
                bar.set_postfix_str(name)
                self.t = time.perf_counter()

            def __exit__(self, *exc):
                clock.times[name] = time.perf_counter() - self.t
                bar.update(1)

        return _Stage()


def evaluate(model: ImageBind, paired: ImageBind | None, test: Split, probe: Split, s: DemoSettings) -> dict[str, Any]:
    """Every score of the report on the test split's files (few-shot pools from the probe split's); without a
    text-paired model the zero-shot rows have no comparison column."""
    y = test.digits
    emb = {m: scores.embed(model, m, test.inputs[m]) for m in SCORED}
    emb["text"] = scores.embed(model, "text", tokenize([r["caption"] for r in test.rows],
                                                      context_length=model.config.encoders["text"].input_shape[0]))
    cls = scores.class_embeddings(model)
    tp = None
    if paired is not None:
        tp = ({m: scores.embed(paired, m, test.inputs[m]) for m in BOUND}, scores.class_embeddings(paired))
    zs = scores.zero_shot_table(emb, cls, y, tp)
    pool = {m: scores.embed(model, m, probe.inputs[m]) for m in SCORED}
    few = scores.few_shot_table(pool, probe.digits, {m: emb[m] for m in pool}, y, s.shots, s.probe_seeds)
    attrs = {a: test.attribute(a) for a in ("surface", "relief")}
    arith = scores.arithmetic_table(emb, attrs, y, cls, s.arithmetic_queries)
    return {"zero_shot": zs, "retrieval": scores.retrieval_matrix(emb, y), "few_shot": few, "arithmetic": arith}


def targets(result: dict[str, Any]) -> dict[str, dict]:
    """The issue's targets, checked: emergent top-1 >= 90 and within 5 points of text-paired; R@1 >= 80 for pairs
    never trained together; video top-1 >= 88 and the arithmetic target, when the result holds them."""
    zs, ret = result["zero_shot"], result["retrieval"]
    low = {m: round(zs[m]["emergent"]["top1"], 1) for m in BOUND if zs[m]["emergent"]["top1"] < 90}
    gap = {m: round(zs[m]["gap"], 1) for m in BOUND if zs[m].get("gap", 0.0) > 5}
    never = {k: v["R@1"] for k, v in ret.items() if not v["trained_together"] and "text" not in k}
    weak = {k: round(v, 1) for k, v in never.items() if v < 80}
    extra = {}
    if all("gap" in zs[m] for m in BOUND):  # a preset without the text-paired run has no comparison
        extra["within 5 points of text-paired"] = {"met": not gap, "detail": f"gaps: {gap}" if gap else "all"}
    if "video" in zs:
        video = zs["video"]["emergent"]["top1"]
        extra["video emergent top-1 >= 88%"] = {"met": video >= 88, "detail": f"{video:.1f}%"}
    if "arithmetic" in result:
        extra["arithmetic >= 50% of the top 5 and >= 3x the better single query"] = arithmetic_target(
            result["arithmetic"]
        )
    return {
        "emergent top-1 >= 90% (bound modalities)": {"met": not low, "detail": f"below: {low}" if low else "all"},
        "R@1 >= 80% (never trained together)": {"met": not weak,
                                               "detail": f"below: {weak}" if weak else f"all {len(never)} pairs"},
        **extra,
    }  # fmt: skip


def save_demo_model(model: ImageBind, data: DemoData, folder: Path) -> Path:
    """Save with the loader constants in each encoder's `preprocess`, so files load as the demo's inputs did."""
    for m, consts in data.preprocess.items():
        if m in model.encoders:
            set_encoder_config(model, m, preprocess={**model.config.encoders[m].preprocess, **consts})
    return save_model(model, folder)


def write_report(result: dict[str, Any], run: Path) -> dict[str, Path]:
    """report.json, report.md and the three plots."""
    plots = run / "plots"
    plots.mkdir(exist_ok=True)
    runs = {name: run / "train" / name / "metrics.jsonl" for name in ("anchor", "bind", "text_paired")}
    runs = {k: v for k, v in runs.items() if v.is_file()}  # a pretrained anchor has no training run here
    report.plot_training(runs, plots / "training.png")
    report.plot_zero_shot(result["zero_shot"], plots / "zero_shot.png")
    report.plot_retrieval(result["retrieval"], plots / "retrieval.png")
    return {
        "json": report.write_json(result, run / "report.json"),
        "md": report.write_markdown(result, run / "report.md"),
    }


def _settings(s: DemoSettings, seed: int, data: DemoData) -> dict[str, Any]:
    return {"preset": s.name, "seed": seed, "config": demo_config().name, "n_train": len(data.train),
            "n_anchor": len(data.anchor),
            "n_test": len(data.test), "train_writers": len(data.world.writers("train")), **asdict(s)}  # fmt: skip


def _tidy(run: Path) -> None:
    """Drop what only a resumed run would need: optimizer checkpoints and the anchor-embedding cache."""
    for sub in ("anchor", "bind", "text_paired"):
        shutil.rmtree(run / "train" / sub / "checkpoints", ignore_errors=True)
    shutil.rmtree(run / "train" / "cache", ignore_errors=True)


def _load() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


__all__ = ["DemoResult", "DemoStopped", "apps_only", "default_run_root", "latest_run", "point_latest", "run_demo"]

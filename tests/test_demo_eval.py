"""`bindkit eval` on a `--quick` demo run's files reproduces the numbers of its report (issue 6's done-when); on a
tiny-preset run (the quick preset has no text-paired model), its text-paired column.

The demo scores its held-out files through `bindkit.data` loaders and its own scorer (`bindkit.demo.scores`); here
the same files go through `bindkit eval`'s CSV reader, embedder (batches of 32, through its cache) and protocols.
Both runs embed the same loaded tensors, so the numbers agree to the last digit except where a batch size changes
a float's last bit and a near-tie flips: one item of slack (100 / n points) is allowed.
"""

import json

import pytest

from bindkit.cli import main
from bindkit.demo.files import SCORED
from bindkit.demo.settings import BOUND, TINY
from bindkit.evaluate import EvalConfig, run_eval

PAIRS = [("audio", "depth"), ("imu", "audio"), ("video", "thermal"), ("depth", "imu")]


@pytest.fixture(scope="module")
def demo(quick_demo, tmp_path_factory):
    run = quick_demo.run_dir
    common = _eval_options(run, tmp_path_factory.mktemp("eval-cache"))
    return run, quick_demo.report, common, 100.0 / quick_demo.report["settings"]["n_test"]


def _eval_options(run, cache_dir):
    """`EvalConfig` options for a demo run's own eval/ files (templates, class names)."""
    return dict(templates=run / "eval" / "templates.txt", class_names=run / "eval" / "classnames.txt",
                cache_dir=cache_dir, progress=False, verbose=False)  # fmt: skip


def _csv(run, m):
    return run / "eval" / f"{m}.csv"


@pytest.mark.parametrize("m", SCORED)
def test_zero_shot_rows(demo, m):
    run, report, common, slack = demo
    want = report["zero_shot"][m]
    got = run_eval(EvalConfig(["csv"], _csv(run, m), run / "model", modality=m, **common))["tasks"]["csv"]["metrics"]
    assert got["n"] == report["settings"]["n_test"]
    assert got["top1"] == pytest.approx(want["emergent"]["top1"], abs=slack)
    assert got["top5"] == pytest.approx(want["emergent"]["top5"], abs=slack)


@pytest.mark.parametrize("q,g", PAIRS)
def test_retrieval_between_modalities_never_trained_together(demo, q, g):
    run, report, common, slack = demo
    got = run_eval(EvalConfig(["csv-pair"], [_csv(run, q), _csv(run, g)], run / "model", modality=[q, g], **common))
    got = got["tasks"]["csv-pair"]["metrics"]
    want = report["retrieval"][f"{q}->{g}"]
    assert not want["trained_together"]
    assert got["R@1"] == pytest.approx(want["R@1"], abs=slack)
    assert got["R@5"] == pytest.approx(want["R@5"], abs=slack)


def test_few_shot_through_the_cli(demo, tmp_path):
    run, report, common, slack = demo
    out = tmp_path / "fewshot.json"
    main(["eval", "--task", "csv-fewshot", "--root", str(_csv(run, "imu")), "--model", str(run / "model"),
          "--modality", "imu", "--out", str(out), "--cache-dir", str(common["cache_dir"])])  # fmt: skip
    got = json.loads(out.read_text())["tasks"]["csv-fewshot"]["metrics"]
    for k in ("k=1", "k=2", "k=4", "k=8"):
        assert got[k]["mean"] == pytest.approx(report["few_shot"]["imu"][k]["mean"], abs=slack), k
        assert got[k]["std"] == pytest.approx(report["few_shot"]["imu"][k]["std"], abs=slack), k


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    """A tiny-preset run (about 40 s here): it trains the text-paired comparison model the quick preset skips."""
    from bindkit.demo import run_demo

    return run_demo(run_root=tmp_path_factory.mktemp("tiny-runs"), settings=TINY, progress=False)


@pytest.mark.parametrize("m", BOUND)
def test_text_paired_rows(tiny_demo, m, tmp_path):
    run, report = tiny_demo.run_dir, tiny_demo.report
    want = report["zero_shot"][m]
    opts = _eval_options(run, tmp_path / "eval-cache")
    got = run_eval(EvalConfig(["csv"], _csv(run, m), run / "text_paired" / "model", modality=m, **opts))
    got = got["tasks"]["csv"]["metrics"]
    slack = 100.0 / report["settings"]["n_test"]
    assert got["n"] == report["settings"]["n_test"]
    assert got["top1"] == pytest.approx(want["text_paired"]["top1"], abs=slack)
    assert want["gap"] == pytest.approx(want["text_paired"]["top1"] - want["emergent"]["top1"])

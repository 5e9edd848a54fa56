"""`bindkit eval` on a `--quick` demo run's files reproduces the numbers of its report (issue 6's done-when).

The demo scores its held-out files through `bindkit.data` loaders and its own scorer (`bindkit.demo.scores`); here
the same files go through `bindkit eval`'s CSV reader, embedder (batches of 32, through its cache) and protocols.
Both runs embed the same loaded tensors, so the numbers agree to the last digit except where a batch size changes
a float's last bit and a near-tie flips: one item of slack (100 / n points) is allowed.
"""

import json

import pytest

from bindkit.cli import main
from bindkit.demo.files import SCORED
from bindkit.evaluate import EvalConfig, run_eval

PAIRS = [("audio", "depth"), ("imu", "audio"), ("video", "thermal"), ("depth", "imu")]


@pytest.fixture(scope="module")
def demo(quick_demo, tmp_path_factory):
    run = quick_demo.run_dir
    common = dict(templates=run / "eval" / "templates.txt", class_names=run / "eval" / "classnames.txt",
                  cache_dir=tmp_path_factory.mktemp("eval-cache"), progress=False, verbose=False)  # fmt: skip
    return run, quick_demo.report, common, 100.0 / quick_demo.report["settings"]["n_test"]


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

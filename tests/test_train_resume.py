"""A killed-and-resumed run ends bit-identical to an uninterrupted one (data order, optimizer, schedule, RNG)."""

import json
import os
import signal
import threading
import time

import pytest
import torch

from _train_utils import config, small_model, world
from bindkit.train import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Everything that draws random numbers is on: drop-path, seeded augmented views (cached), random erasing,
# several epochs (the data order changes per epoch), warm-up + cosine.
PAIR = {"drop_path": 0.3, "augment": True, "views": 3, "erase": 0.5}


def _run(tmp_path, name, **kw):
    cfg = config(
        tmp_path, name, data=world(48), pair=PAIR, steps=10, warmup_steps=2, checkpoint_every=4, **kw
    )
    return train(cfg, model=small_model(seed=1))


def _same(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _metrics(tmp_path, name):
    return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]


def test_stop_and_resume_is_bit_identical(tmp_path):
    full = _run(tmp_path, "full")
    part = _run(tmp_path, "part", stop_after=5)  # between checkpoints: the stop itself checkpoints
    assert part.stopped and part.step == 5 and part.model_dir is None
    again = _run(tmp_path, "part", stop_after=3, resume=True)
    assert again.stopped and again.step == 8
    done = _run(tmp_path, "part", resume=True)
    assert not done.stopped and done.step == 10
    assert _same(full, done)
    assert _metrics(tmp_path, "full") == [dict(r, time=r2["time"]) for r, r2 in
                                          zip(_metrics(tmp_path, "part"), _metrics(tmp_path, "full"), strict=True)]  # fmt: skip


def test_sigterm_checkpoints_and_resumes_bit_identical(tmp_path):
    full = _run(tmp_path, "full")
    metrics = tmp_path / "killed" / "metrics.jsonl"

    def kill_after_two_steps():
        deadline = time.time() + 60
        while time.time() < deadline:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
                os.kill(
                    os.getpid(), signal.SIGTERM
                )  # the handler is installed: the run stops after this step
                return
            time.sleep(0.005)

    killer = threading.Thread(target=kill_after_two_steps)
    killer.start()
    killed = _run(tmp_path, "killed")
    killer.join()
    assert killed.stopped and 2 <= killed.step < 10
    assert (tmp_path / "killed" / "checkpoints" / f"step_{killed.step:08d}").is_dir()
    done = _run(tmp_path, "killed", resume=True)
    assert done.step == 10 and _same(full, done)

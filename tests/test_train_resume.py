"""A killed-and-resumed run ends bit-identical to an uninterrupted one (data order, optimizer, schedule, RNG)."""

import json
import signal

import pytest
import torch

from _train_utils import config, small_model, world
from bindkit.process import stop_on
from bindkit.train import Trainer, train

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
    """SIGTERM reaches the handler `bindkit train` installs (`stop_on`), raised in the main thread right after the
    second optimizer step (no timing thread, no race): the run finishes that step, checkpoints at step 2 and
    returns; resuming ends bit-identical to an uninterrupted run."""
    full = _run(tmp_path, "full")
    cfg = config(tmp_path, "killed", data=world(48), pair=PAIR, steps=10, warmup_steps=2, checkpoint_every=4)
    trainer = Trainer(cfg, model=small_model(seed=1))
    steps: list[int] = []

    def after_step(*_):
        steps.append(len(steps) + 1)
        if len(steps) == 2:
            signal.raise_signal(signal.SIGTERM)

    trainer.optimizer.register_step_post_hook(after_step)
    before = signal.getsignal(signal.SIGTERM)
    with stop_on(signal.SIGTERM) as stop:
        killed = trainer.run(stop)
    assert signal.getsignal(signal.SIGTERM) is before  # the entry point's handler is gone again
    assert stop.is_set() and killed.stopped and killed.step == 2 and steps == [1, 2]
    assert (tmp_path / "killed" / "checkpoints" / "step_00000002").is_dir()
    done = _run(tmp_path, "killed", resume=True)
    assert done.step == 10 and _same(full, done)


def test_training_installs_no_signal_handler(tmp_path):
    """Library training leaves process state alone: no SIGTERM handler of its own while it runs."""
    trainer = Trainer(config(tmp_path, "plain", data=world(16), steps=2), model=small_model())
    seen = []
    trainer.optimizer.register_step_post_hook(lambda *_: seen.append(signal.getsignal(signal.SIGTERM)))
    before = signal.getsignal(signal.SIGTERM)
    trainer.run()
    assert seen == [before, before]

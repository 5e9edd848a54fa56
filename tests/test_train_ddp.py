"""Two CPU processes (gloo) give the loss, gradients and trained weights of one process on the joined batch.

Each rank holds half of every global batch; the loss gathers embeddings with gradients (local loss + gather with
grad) and DDP averages the gradients. Two pairs alternate, so DDP also has to cope with unused encoders per step,
and the per-rank batch is split into two accumulation micro-batches. A CLIP-style run (both towers trained, the
learnable temperature) checks the same equality.
"""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _train_utils import clip_world, grads, small_model
from bindkit.train import PairConfig, TensorPairs, TrainConfig, Trainer
from bindkit.train import dist as tdist

STEPS = 4
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(root, run: str, accum: int) -> TrainConfig:
    g = torch.Generator().manual_seed(0)
    img = torch.randn(32, 3, 32, 32, generator=g)
    depth = TensorPairs(
        ("vision", "depth"), img, 2 * img.mean(1, keepdim=True) + torch.randn(32, 1, 32, 32, generator=g)
    )
    thermal = TensorPairs(("vision", "thermal"), img, img[:, :1] + torch.randn(32, 1, 32, 32, generator=g))
    pairs = [PairConfig(("vision", "depth"), depth, batch_size=16, replication=1.0, lr=1e-3),
             PairConfig(("vision", "thermal"), thermal, batch_size=16, replication=1.0, lr=1e-3)]  # fmt: skip
    return TrainConfig(pairs=pairs, steps=STEPS, warmup_steps=1, grad_accum=accum, progress=False,
                       run_dir=f"{root}/{run}", cache_dir=f"{root}/cache")  # fmt: skip


CLIP_STEPS = 3


def _clip_config(root, run: str, accum: int) -> TrainConfig:
    return TrainConfig(pairs=[PairConfig(("vision", "text"), clip_world(16), batch_size=16, lr=1e-3)],
                       encoders={"vision": "train", "text": "train"}, steps=CLIP_STEPS, warmup_steps=1,
                       grad_accum=accum, progress=False, run_dir=f"{root}/{run}", cache_dir=f"{root}/cache")  # fmt: skip


KINDS = {"pairs": (_config, ("vision", "depth", "thermal")), "clip": (_clip_config, ("vision", "text"))}


def _first_step(tr: Trainer) -> dict:
    b = tr.plan.epoch(0)[0]
    loss, acc = tr.forward_backward(b)
    loss, acc = tdist.mean([loss, acc], tr.device)
    out = {"loss": loss, "acc": acc, "grads": grads(tr.model), "items": b.items}
    tr.optimizer.zero_grad(set_to_none=True)
    return out


def _worker(rank: int, root: str, kind: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/pg", rank=rank, world_size=2)
    make, modalities = KINDS[kind]
    tr = Trainer(make(root, "ddp", accum=2), model=small_model(modalities))
    first = _first_step(tr)
    res = tr.run()
    torch.save({**first, "final": res.model.state_dict(), "step": res.step}, f"{root}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_joined_batch(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path), "pairs"), nprocs=2)
    tr = Trainer(_config(tmp_path, "single", accum=1), model=small_model(("vision", "depth", "thermal")))
    ref = _first_step(tr)
    final = tr.run().model.state_dict()
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert (
        r0["items"].tolist() + r1["items"].tolist() == ref["items"].tolist()
    )  # each rank holds half the batch
    assert abs(r0["loss"] - ref["loss"]) < 1e-6 and r0["loss"] == r1["loss"] and r0["acc"] == ref["acc"]
    assert r0["grads"].keys() == ref["grads"].keys()  # unused encoders keep no gradient (AdamW skips them)
    assert len({k.split(".")[1] for k in ref["grads"]}) == 1
    for k, g in ref["grads"].items():
        assert torch.equal(r0["grads"][k], r1["grads"][k]), k  # DDP left both ranks the same gradient
        assert torch.allclose(r0["grads"][k], g, atol=1e-5, rtol=1e-4), k
    assert r0["step"] == STEPS
    for k, w in final.items():
        assert torch.allclose(r0["final"][k], w, atol=1e-5), k


def test_clip_style_two_processes_equal_one_process(tmp_path):
    """Both towers trained with the learnable temperature: 2 gloo ranks (each half the batch, 2 accumulation
    micro-batches) give the single-process loss, gradients (the logit scale's included) and trained weights."""
    mp.spawn(_worker, args=(str(tmp_path), "clip"), nprocs=2)
    tr = Trainer(_clip_config(tmp_path, "single", accum=1), model=small_model(("vision", "text")))
    ref = _first_step(tr)
    final = tr.run().model.state_dict()
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["items"].tolist() + r1["items"].tolist() == ref["items"].tolist()
    assert (
        r0["loss"] == pytest.approx(ref["loss"], abs=1e-6)
        and r0["loss"] == r1["loss"]
        and r0["acc"] == ref["acc"]
    )
    assert (
        "encoders.text.post.log_scale" in ref["grads"] and "encoders.vision.head.proj.weight" in ref["grads"]
    )
    assert {k.split(".")[1] for k in ref["grads"]} == {"vision", "text"}
    assert r0["grads"].keys() == ref["grads"].keys() == r1["grads"].keys()
    assert ref["grads"]["encoders.text.post.log_scale"].abs().item() > 1e-4  # a real gradient to compare
    for k, g in ref["grads"].items():
        assert torch.equal(r0["grads"][k], r1["grads"][k]), k
        assert torch.allclose(r0["grads"][k], g, atol=1e-5, rtol=1e-4), k
    assert r0["step"] == r1["step"] == CLIP_STEPS
    assert not torch.equal(final["encoders.text.post.log_scale"], small_model(("vision", "text")).state_dict()[
        "encoders.text.post.log_scale"])  # fmt: skip
    for k, w in final.items():
        assert torch.equal(r0["final"][k], r1["final"][k]), k
        assert torch.allclose(r0["final"][k], w, atol=1e-5), k

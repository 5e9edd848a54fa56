"""Two CPU processes (gloo) give the loss, gradients and trained weights of one process on the joined batch.

Each rank holds half of every global batch; the loss gathers embeddings with gradients (local loss + gather with
grad) and DDP averages the gradients. Two pairs alternate, so DDP also has to cope with unused encoders per step,
and the per-rank batch is split into two accumulation micro-batches.
"""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from _train_utils import grads, small_model
from bindkit.train import PairConfig, TensorPairs, TrainConfig, Trainer
from bindkit.train import dist as tdist

STEPS = 4


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


def _first_step(tr: Trainer) -> dict:
    b = tr.plan.epoch(0)[0]
    loss, acc = tr.forward_backward(b)
    loss, acc = tdist.mean([loss, acc], tr.device)
    out = {"loss": loss, "acc": acc, "grads": grads(tr.model), "items": b.items}
    tr.optimizer.zero_grad(set_to_none=True)
    return out


def _worker(rank: int, root: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/pg", rank=rank, world_size=2)
    tr = Trainer(_config(root, "ddp", accum=2), model=small_model(("vision", "depth", "thermal")))
    first = _first_step(tr)
    res = tr.run()
    torch.save({**first, "final": res.model.state_dict(), "step": res.step}, f"{root}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_processes_equal_one_process_on_the_joined_batch(tmp_path):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mp.spawn(_worker, args=(str(tmp_path),), nprocs=2)
        tr = Trainer(_config(tmp_path, "single", accum=1), model=small_model(("vision", "depth", "thermal")))
        ref = _first_step(tr)
        final = tr.run().model.state_dict()
    finally:
        torch.set_num_threads(n)
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

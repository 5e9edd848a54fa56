"""The training engine end to end on fabricated pairs: learning, run directory, exact accumulation, pair schedule."""

import json

import pytest
import torch
import torch.nn.functional as F

import bindkit
from _train_utils import config, grads, small_model, world
from bindkit.train import PairConfig, TensorPairs, TrainConfig, Trainer, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_short_training_learns_and_writes_the_run_directory(tmp_path):
    data, held_out = world(256, seed=0), world(256, seed=0)
    res = train(config(tmp_path, data=data, pair=dict(batch_size=32, augment=False), steps=50, warmup_steps=5,
                       checkpoint_every=25), model=small_model())  # fmt: skip
    recs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in recs] == list(range(1, 51))
    first, last = recs[:5], recs[-10:]
    mean = lambda rs, k: sum(r[k] for r in rs) / len(rs)  # noqa: E731
    assert mean(last, "loss") < mean(first, "loss") - 1.0
    assert mean(first, "acc") < 0.15 and mean(last, "acc") > 0.4  # chance is 1/32
    # Held-out instances (fresh noise): the depth embedding finds its own image far above chance.
    g = torch.Generator().manual_seed(9)
    img, depth = held_out.tensors
    img2 = img + 0.3 * torch.randn(img.shape, generator=g)
    depth2 = 2 * img2.mean(1, keepdim=True) + 0.3 * torch.randn(depth.shape, generator=g)
    emb = res.model.encode({"vision": img2[:64], "depth": depth2[:64]})
    top1 = (emb["depth"] @ emb["vision"].T).argmax(1).eq(torch.arange(64)).float().mean()
    assert top1 > 0.3  # chance 1/64
    # Run directory: resolved config (Table 9 defaults), checkpoints, plots, a loadable final model.
    run = tmp_path / "run"
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["pairs"][0]["temperature"] == 0.2 and cfg["pairs"][0]["grad_clip"] == 1.0
    assert cfg["pairs"][0]["data"].startswith("<TensorPairs") and cfg["encoders"] == {"vision": "frozen",
                                                                                      "depth": "train"}  # fmt: skip
    assert sorted(p.name for p in (run / "checkpoints").glob("step_*")) == ["step_00000025", "step_00000050"]
    assert (run / "checkpoints" / "latest").read_text() == "step_00000050"
    for png in ("loss.png", "accuracy.png"):
        assert (run / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    loaded = bindkit.load_model(res.model_dir)
    assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in loaded.state_dict().items())
    assert loaded.scale("depth") == pytest.approx(5.0)  # 1 / tau


def _clip_world(n=16):
    g = torch.Generator().manual_seed(3)
    ids = torch.zeros(n, 16, dtype=torch.long)
    ids[:, 0], ids[:, 1:6] = 49406, torch.randint(1, 4000, (n, 5), generator=g)
    ids[:, 6] = 49407
    return TensorPairs(("vision", "text"), torch.randn(n, 3, 32, 32, generator=g), ids)


def test_grad_accumulation_gives_full_batch_gradients_clip_style(tmp_path):
    out = {}
    for accum in (1, 2, 4):
        cfg = TrainConfig(pairs=[PairConfig(("vision", "text"), _clip_world(), batch_size=16)], steps=2,
                          encoders={"vision": "train", "text": "train"}, grad_accum=accum, progress=False,
                          run_dir=str(tmp_path / f"a{accum}"), cache_dir=str(tmp_path / "c"))  # fmt: skip
        tr = Trainer(cfg, model=small_model(("vision", "text")))
        assert tr.cfg.pairs[0].temperature == "learnable"
        loss, _ = tr.forward_backward(tr.plan.epoch(0)[0])
        out[accum] = loss, grads(tr.model)
    loss1, g1 = out[1]
    assert "encoders.text.post.log_scale" in g1 and "encoders.vision.head.proj.weight" in g1
    for accum in (2, 4):
        loss, g = out[accum]
        assert loss == pytest.approx(loss1, abs=1e-6) and g.keys() == g1.keys()
        for k in g1:  # the learnable temperature's gradient is counted once, like every other
            assert torch.allclose(g[k], g1[k], atol=1e-5, rtol=1e-4), k


def test_pairs_alternate_with_replication_and_per_pair_settings(tmp_path):
    g = torch.Generator().manual_seed(0)
    img = torch.randn(32, 3, 32, 32, generator=g)
    depth = TensorPairs(("vision", "depth"), img, torch.randn(32, 1, 32, 32, generator=g))
    thermal = TensorPairs(("vision", "thermal"), img, torch.randn(32, 1, 32, 32, generator=g))
    cfg = TrainConfig(pairs=[PairConfig(("vision", "depth"), depth, batch_size=16, replication=2.0),
                             PairConfig(("vision", "thermal"), thermal, batch_size=16, grad_clip=1e-3, replication=1.0)],
                      steps=12, progress=False, run_dir=str(tmp_path / "r"), cache_dir=str(tmp_path / "c"))  # fmt: skip
    tr = Trainer(cfg, model=small_model(("vision", "depth", "thermal")))
    plan = tr.plan.epoch(0)
    assert tr.plan.steps_per_epoch == 6 and sorted(b.pair for b in plan) == [0, 0, 0, 0, 1, 1]
    assert tr.plan.epoch(0)[0].items.tolist() == plan[0].items.tolist()  # a pure function of (seed, epoch)
    # Table 9: depth lr 1.6e-3 / wd 0.2, thermal lr 5e-4 / wd 0.05 / tau 0.1 -> logit scale 10.
    groups = {gr["name"]: gr for gr in tr.optimizer.param_groups}
    assert groups["depth/decay"]["peak_lr"] == 1.6e-3 and groups["depth/decay"]["weight_decay"] == 0.2
    assert groups["thermal/decay"]["peak_lr"] == 5e-4 and groups["thermal/decay"]["weight_decay"] == 0.05
    assert groups["thermal/no_decay"]["weight_decay"] == 0.0 and tr.model.scale("thermal") == pytest.approx(
        10.0
    )
    # A thermal step touches only thermal weights, with its gradient clipped to the pair's 1e-3.
    b = next(b for b in plan if b.pair == 1)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    tr.forward_backward(b)
    seen = []
    step = tr.optimizer.step
    tr.optimizer.step = lambda: (seen.append(torch.cat([p.grad.flatten() for p in tr.model.parameters()
                                                        if p.grad is not None]).norm()), step())[1]  # fmt: skip
    tr.optimizer_step(1)
    assert seen[0] == pytest.approx(1e-3, rel=1e-3)
    after = tr.model.state_dict()
    changed = {k.split(".")[1] for k in after if not torch.equal(after[k], before[k])}
    assert changed == {"thermal"}


def test_missing_files_stop_the_run_before_it_starts(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    rows = [{"image": "a.png", "depth": "a.png"}, {"image": "gone.jpg", "depth": "a.png"},
            {"image": "a.png", "depth": "also_gone.png"}]  # fmt: skip
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = TrainConfig(
        pairs=[PairConfig(("vision", "depth"), str(tmp_path / "m.jsonl"))], run_dir=str(tmp_path / "r")
    )
    with pytest.raises(FileNotFoundError) as e:
        train(cfg)
    msg = str(e.value)
    assert "2 file(s)" in msg and "gone.jpg" in msg and "also_gone.png" in msg and "row 1" in msg
    assert not (tmp_path / "r").exists()


def test_run_directory_is_protected_and_resume_needs_the_same_config(tmp_path):
    train(config(tmp_path, steps=2), model=small_model())
    with pytest.raises(FileExistsError, match="resume=True"):
        train(config(tmp_path, steps=2), model=small_model())
    with pytest.raises(ValueError, match="pairs"):
        train(config(tmp_path, steps=2, resume=True, pair=dict(lr=5e-3)), model=small_model())


def test_bf16_and_activation_checkpointing(tmp_path):
    res = train(config(tmp_path, steps=2, precision="bf16", grad_checkpointing=True), model=small_model())
    assert res.step == 2 and all(torch.isfinite(torch.tensor(v["loss"])) for v in res.metrics.values())
    out = []
    for ckpt in (False, True):
        tr = Trainer(config(tmp_path, f"g{ckpt}", grad_checkpointing=ckpt), model=small_model())
        assert tr.model.encoders["depth"].trunk.grad_checkpointing is ckpt
        tr.forward_backward(tr.plan.epoch(0)[0])
        out.append(grads(tr.model))
    assert all(torch.allclose(out[0][k], out[1][k], atol=1e-6) for k in out[0])


def test_frozen_anchor_is_not_trained_and_scale_follows_temperature(tmp_path):
    model = small_model(("vision", "text", "depth"))  # text is in no pair: it stays frozen
    frozen = {k: v.clone() for k, v in model.state_dict().items() if ".depth." not in k}
    res = train(config(tmp_path, steps=3, pair=dict(temperature=0.25)), model=model)
    assert all(torch.equal(v, res.model.state_dict()[k]) for k, v in frozen.items())
    info = json.loads((tmp_path / "run" / "model.json").read_text())
    assert {m: i["mode"] for m, i in info.items()} == {"vision": "frozen", "text": "frozen", "depth": "train"}
    assert res.model.scale("depth") == pytest.approx(4.0) and res.model.config.encoders["depth"].scale == 4.0
    x = torch.randn(2, 1, 32, 32)
    assert torch.allclose(res.model({"depth": x})["depth"].norm(dim=-1), torch.full((2,), 4.0))
    assert F.normalize(res.model({"depth": x})["depth"], dim=-1).shape == (2, 32)


def test_config_files_defaults_and_validation(tmp_path):
    from bindkit.train import TABLE9, load_config, resolve

    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "pairs.jsonl").write_text("")
    raw = {"pairs": [{"modalities": ["image", m], "data": "pairs.jsonl"} for m in ("audio", "depth", "thermal", "imu")],
           "steps": 10, "lora": {"rank": 4, "modules": ["in_proj"]}}  # fmt: skip
    (tmp_path / "sub" / "c.json").write_text(json.dumps(raw))
    cfg = load_config(tmp_path / "sub" / "c.json", resume=True, steps=None, run_dir=str(tmp_path / "r"))
    assert cfg.resume and cfg.steps == 10 and cfg.lora.modules == ("in_proj",)
    assert cfg.pairs[0].data == str(tmp_path / "sub" / "pairs.jsonl")  # relative to the config file
    res = resolve(cfg)
    got = {p.modalities[1]: (p.replication, p.temperature, p.lr, p.weight_decay, p.batch_size, p.grad_clip,
                             p.drop_path) for p in res.pairs}  # fmt: skip
    assert got == {"audio": (1.25, 0.05, 1.6e-3, 0.2, 2048, 1.0, 0.1), "depth": (50.0, 0.2, 1.6e-3, 0.2, 512, 1.0, 0.0),
                   "thermal": (25.0, 0.1, 5e-4, 0.05, 512, 5.0, 0.0), "imu": (1.0, 0.2, 5e-4, 0.5, 512, 1.0, 0.7)}  # fmt: skip
    assert (
        res.pairs[0].name == "vision-audio"
        and res.encoders["vision"] == "frozen"
        and TABLE9["imu"]["epochs"] == 8
    )
    assert TrainConfig.from_dict(json.loads(json.dumps(res.to_dict()))).to_dict() == res.to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        TrainConfig.from_dict({"pairs": [], "stepz": 3})
    with pytest.raises(ValueError, match="both encoders are frozen"):
        resolve(TrainConfig(pairs=[PairConfig(("vision", "text"), "x")]))
    with pytest.raises(ValueError, match="learnable"):
        Trainer(TrainConfig(pairs=[PairConfig(("vision", "depth"), world(32), temperature="learnable", batch_size=16,
                                              replication=1.0)], run_dir=str(tmp_path / "l"), progress=False),
                model=small_model())  # fmt: skip


def test_clip_anchor_from_scratch_then_binding_keeps_it(tmp_path):
    """The demo's flow: train a tiny image-text anchor with both towers open, then bind depth to it (frozen)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.zeros(32, 32, dtype=torch.long)
    ids[:, 0], ids[:, 1:4], ids[:, 4] = 49406, torch.randint(1, 4000, (32, 3), generator=g), 49407
    img = torch.randn(32, 3, 64, 64, generator=g)
    anchor = train(TrainConfig(pairs=[PairConfig(("vision", "text"), TensorPairs(("vision", "text"), img, ids),
                                                 batch_size=16, lr=1e-3)],
                               encoders={"vision": "train", "text": "train"}, steps=3, progress=False,
                               run_dir=str(tmp_path / "anchor"), cache_dir=str(tmp_path / "c")))  # fmt: skip
    scale = anchor.model.scale("text")
    assert scale != pytest.approx(1 / 0.07, abs=1e-6)  # the learnable temperature moved
    depth = TensorPairs(("vision", "depth"), img, img.mean(1, keepdim=True))
    bound = train(TrainConfig(pairs=[PairConfig(("vision", "depth"), depth, batch_size=16, replication=1.0)],
                              init=str(anchor.model_dir), steps=2, progress=False, run_dir=str(tmp_path / "bind"),
                              cache_dir=str(tmp_path / "c")))  # fmt: skip
    assert list(bound.model.encoders) == ["vision", "text", "depth"]
    ref = bindkit.load_model(anchor.model_dir).state_dict()
    sd = bound.model.state_dict()
    assert all(torch.equal(sd[k], v) for k, v in ref.items())  # the anchor is untouched
    assert bound.model.scale("text") == pytest.approx(scale) and bound.model.scale("depth") == pytest.approx(
        5.0
    )

"""Score binding schedules against a frozen pretrained anchor: the quick preset's tuning runs (docs/demo.md).

    python scripts/demo_bind_schedule.py ANCHOR_MODEL_DIR 3000 '{"steps": 600}' '{"steps": 1200, "lr": 0.008}'

Builds the digits world once (N bound instances, 300 held-out test items), then per JSON schedule (steps, batch,
lr, warmup, share, tau) binds audio/depth/thermal/IMU to the anchor's frozen image encoder with
`bindkit.demo.training.train_bound` and prints emergent zero-shot top-1 per modality on the test split (in-memory
inputs, normalised with the train split's statistics). Run it inside /work/bin/cpu-slot on a shared machine.
"""

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

from bindkit.demo import scores, training
from bindkit.demo.data import audio_options, build_data, input_shapes, normalize
from bindkit.demo.settings import BOUND, SHARE, Phase, demo_config
from bindkit.worlds import to_model_inputs


def main(anchor: Path, n_train: int, schedules: list[dict]) -> None:
    """Bind once per schedule and print one JSON line of settings, seconds and top-1 per modality."""
    cfg, t0 = demo_config(), time.time()
    data = build_data(cfg, n_train, n_train, 300, 1, seed=0)
    world_s = time.time() - t0
    shapes = input_shapes(cfg)
    test = to_model_inputs(data.test, {m: shapes[m] for m in BOUND}, audio_kwargs=audio_options(data.world, cfg))
    test = {m: normalize(x, data.preprocess[m]) if "mean" in data.preprocess.get(m, {}) else x for m, x in test.items()}
    for v in schedules:
        phase = Phase(steps=v["steps"], batch_size=v.get("batch", 96), lr=v.get("lr", 4e-3),
                      warmup_steps=v.get("warmup", 25), share={**SHARE, **v.get("share", {})},
                      temperature=v.get("tau", {}))  # fmt: skip
        t1 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            model = training.train_bound(data.train_inputs, anchor, phase, Path(tmp) / "bind", progress=False).model
        assert model is not None
        cls = scores.class_embeddings(model.eval())
        top1 = {m: round(float(((scores.embed(model, m, test[m]) @ cls.T).argmax(1).numpy() == data.test.digit)
                                .mean() * 100), 1) for m in BOUND}  # fmt: skip
        print(json.dumps({"n_train": n_train, **dataclasses.asdict(phase), "world_s": round(world_s),
                          "train_s": round(time.time() - t1), **top1}), flush=True)  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), [json.loads(a) for a in sys.argv[3:]])

"""Evaluation metrics and protocols against hand-computed cases and direct numpy re-derivations."""

import hashlib

import numpy as np
import pytest
import torch

from bindkit import evaluate as E
from bindkit.evaluate.metrics import label_ranks, multi_hot

# ---- hand-computed metric cases ------------------------------------------------------------------------------


def test_topk_hand_case_counts_ties_against_the_model():
    s = np.array([[0.1, 0.5, 0.4], [0.3, 0.2, 0.1], [0.2, 0.2, 0.6]])
    y = np.array([2, 0, 0])
    # item 0: class 1 beats the true class -> rank 1; item 1: rank 0; item 2: a tie (0.2) and 0.6 ahead -> rank 2
    assert label_ranks(s, y).tolist() == [1, 0, 2]
    acc = E.topk_accuracy(s, y, (1, 2, 3))
    assert acc == pytest.approx({1: 100 / 3, 2: 200 / 3, 3: 100.0})


def test_constant_scores_get_no_credit():
    assert E.topk_accuracy(np.zeros((4, 5)), np.array([0, 1, 2, 3]), (1,))[1] == 0.0


def test_mean_per_class_recall_hand_case():
    # class 0: items 1, 2 -> one right (0.5); class 2: item 0 -> wrong (0); class 1 absent from labels: not averaged
    assert E.mean_per_class_recall(np.array([1, 0, 2]), np.array([2, 0, 0]), 3) == pytest.approx(25.0)


def test_average_precision_hand_cases():
    # positives at ranks 1 and 3: (1/1 + 2/3) / 2
    assert E.average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0])) == pytest.approx(
        250 / 3
    )
    # a tie at 0.8 between a positive and a negative is one threshold: recall .5 at precision 1/3, then 1 at 2/4
    ap = E.average_precision(np.array([0.9, 0.8, 0.8, 0.1]), np.array([0, 1, 0, 1]))
    assert ap == pytest.approx(100 * (0.5 / 3 + 0.5 * 0.5))
    with pytest.raises(ValueError, match="no positive"):
        E.average_precision(np.array([0.1, 0.2]), np.array([0, 0]))


def test_average_precision_matches_the_definition_without_ties():
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=300), rng.random(300) < 0.2
    order = np.argsort(-s)
    hits = np.cumsum(t[order])
    ref = np.mean([hits[i] / (i + 1) for i in range(300) if t[order][i]]) * 100
    assert E.average_precision(s, t) == pytest.approx(ref)


def test_mean_average_precision_skips_classes_without_positives():
    s = np.array([[0.9, 0.1, 0.3], [0.2, 0.8, 0.4], [0.7, 0.6, 0.5]])
    t = multi_hot([[0], [1], [0, 1]], 3)  # class 2 has no positive
    m, used = E.mean_average_precision(s, t)
    assert used == 2
    # class 0: scores .9,.2,.7 positives items 0,2 -> ranks 1,2 -> AP 1; class 1: .1,.8,.6 positives 1,2 -> AP 1
    assert m == pytest.approx(100.0)


def test_recall_at_k_hand_case():
    s = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8]])
    r = E.recall_at_k(s, [[0], [0, 1]], (1, 2, 3))
    # q0: two irrelevant items above its only relevant one -> hit at 3; q1: best relevant (0.3) behind one -> hit at 2
    assert r == pytest.approx({1: 0.0, 2: 50.0, 3: 100.0})
    assert E.recall_at_k(s, np.array([1, 2]), (1,))[1] == 100.0  # one index per query
    with pytest.raises(ValueError, match="out of range"):
        E.recall_at_k(s, [[3], [0]], (1,))


# ---- zero-shot and retrieval against numpy -------------------------------------------------------------------


def fake_text_encoder(dim: int = 16):
    """Deterministic 'text encoder': a string's embedding is a Gaussian seeded by its hash, with a random norm."""

    def encode(texts):
        rows = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            r = np.random.default_rng(seed)
            rows.append(
                r.normal(size=dim) * r.uniform(0.5, 20)
            )  # norms vary: the recipe must normalise per prompt
        return torch.tensor(np.stack(rows))

    return encode


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def numpy_classifier(encode, names, templates):
    """The CLIP recipe written out directly: per class, unit prompt embeddings averaged, renormalised."""
    w = []
    for n in names:
        e = _unit(np.asarray(encode([t.format(n) for t in templates]), dtype=np.float64))
        w.append(_unit(e.mean(0)))
    return np.stack(w)


def test_zero_shot_matches_numpy_on_random_embeddings():
    rng = np.random.default_rng(1)
    names = [f"class {i}" for i in range(7)]
    templates = ["a photo of a {}.", "a sound of the {}", "{}"]
    encode = fake_text_encoder()
    W = numpy_classifier(encode, names, templates)
    x = rng.normal(size=(200, 16)) * rng.uniform(0.1, 5, size=(200, 1))
    y = rng.integers(0, 7, size=200)
    s = _unit(x) @ W.T
    class_emb, groups = E.class_embeddings(encode, names, templates)
    np.testing.assert_allclose(class_emb.numpy(), W, atol=1e-6)
    got = E.zero_shot(torch.tensor(x), y, class_emb, groups)
    ref_top1 = (s.argmax(1) == y).mean() * 100
    ref_top5 = np.mean([y[i] in np.argsort(-s[i])[:5] for i in range(200)]) * 100
    ref_mpcr = np.mean([(s.argmax(1)[y == c] == c).mean() for c in np.unique(y)]) * 100
    assert got["top1"] == pytest.approx(ref_top1)
    assert got["top5"] == pytest.approx(ref_top5)
    assert got["mean_per_class_recall"] == pytest.approx(ref_mpcr)
    assert (
        5 < got["top1"] < 40
    )  # random embeddings: near chance, and the test would notice a degenerate classifier


def test_others_rule_scores_best_name_of_a_group():
    rng = np.random.default_rng(2)
    encode = fake_text_encoder()
    groups = [["kitchen"], ["bedroom"], ["basement", "cafe", "foyer"]]  # the last class is "others"
    class_emb, owner = E.class_embeddings(encode, groups, ["a photo of a {}."])
    assert owner.tolist() == [0, 1, 2, 2, 2]
    x = rng.normal(size=(50, 16))
    W = numpy_classifier(encode, ["kitchen", "bedroom", "basement", "cafe", "foyer"], ["a photo of a {}."])
    s = _unit(x) @ W.T
    ref = np.concatenate([s[:, :2], s[:, 2:].max(1, keepdims=True)], 1)
    np.testing.assert_allclose(E.zero_shot_scores(x, class_emb, owner).numpy(), ref, atol=1e-6)


def test_zero_shot_multilabel_gives_map():
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(40, 8)), rng.normal(size=(4, 8))
    labels = [[int(rng.integers(4))] for _ in range(40)]
    got = E.zero_shot(x, labels, w, multilabel=True)
    ref, used = E.mean_average_precision(_unit(x) @ _unit(w).T, multi_hot(labels, 4))
    assert got["mAP"] == pytest.approx(ref) and got["classes_scored"] == used


def test_templates_default_and_custom(tmp_path):
    t = E.default_templates()
    assert len(t) == 80 and t[0] == "a bad photo of a {}." and all(s.count("{}") == 1 for s in t)
    (tmp_path / "t.txt").write_text("a sound of a {}\nthe {} sound\n")
    assert E.load_templates(tmp_path / "t.txt") == ["a sound of a {}", "the {} sound"]
    (tmp_path / "bad.txt").write_text("no placeholder\n")
    with pytest.raises(ValueError, match="template 0"):
        E.load_templates(tmp_path / "bad.txt")
    (tmp_path / "c.txt").write_text("dog\nperson|man|woman\n")
    assert E.load_class_names(tmp_path / "c.txt") == [["dog"], ["person", "man", "woman"]]


def test_retrieval_matches_numpy_argsort():
    rng = np.random.default_rng(4)
    q, k = rng.normal(size=(60, 12)), rng.normal(size=(45, 12))
    relevant = [rng.choice(45, size=rng.integers(1, 4), replace=False).tolist() for _ in range(60)]
    s = _unit(q) @ _unit(k).T
    got = E.retrieval(q, k, relevant, ks=(1, 5, 10), chunk=7)  # chunking must not change the answer
    for K in (1, 5, 10):
        ref = np.mean([bool(set(np.argsort(-s[i])[:K]) & set(relevant[i])) for i in range(60)]) * 100
        assert got[f"R@{K}"] == pytest.approx(ref)


def test_caption_retrieval_both_directions():
    rng = np.random.default_rng(5)
    items = rng.normal(size=(10, 8))
    caps = items.repeat(3, 0) + 0.05 * rng.normal(size=(30, 8))  # three near-copies per item: all retrievable
    texts, owner = E.flatten_captions([[f"c{i}{j}" for j in range(3)] for i in range(10)])
    assert texts[:3] == ["c00", "c01", "c02"] and owner.tolist()[:4] == [0, 0, 0, 1]
    r = E.caption_retrieval(items, caps, owner, ks=(1,))
    assert r["text_to_item"]["R@1"] == 100.0 and r["item_to_text"]["R@1"] == 100.0
    assert r["text_to_item"]["n_queries"] == 30 and r["item_to_text"]["n_queries"] == 10


# ---- few-shot ----------------------------------------------------------------------------------------------


def _clusters(rng, n_per, classes=10, dim=16, noise=0.6):
    means = rng.normal(size=(classes, dim))
    y = np.repeat(np.arange(classes), n_per)
    return means[y] + noise * rng.normal(size=(len(y), dim)), y


def test_sample_shots_is_balanced_seeded_and_checked():
    y = np.repeat(np.arange(4), 5)
    a, b = E.sample_shots(y, 2, seed=0), E.sample_shots(y, 2, seed=1)
    assert np.bincount(y[a]).tolist() == [2, 2, 2, 2]
    assert a.tolist() == E.sample_shots(y, 2, seed=0).tolist() and a.tolist() != b.tolist()
    with pytest.raises(ValueError, match="fewer than 6 shots"):
        E.sample_shots(y, 6, seed=0)


def test_few_shot_learns_separable_classes_and_reports_spread():
    rng = np.random.default_rng(6)
    xtr, ytr = _clusters(rng, 20)
    xte, yte = xtr[::2] + 0.3 * rng.normal(size=xtr[::2].shape), ytr[::2]
    out = E.few_shot(xtr, ytr, xte, yte, shots=(1, 8), seeds=(0, 1, 2), settings=E.settings_for("audio"))
    assert out["k=8"]["mean"] > 90  # chance is 10 %
    assert out["k=8"]["mean"] >= out["k=1"]["mean"] - 5
    runs = out["k=1"]["runs"]
    assert len(runs) == 3 and out["k=1"]["mean"] == pytest.approx(np.mean(runs))
    assert out["k=1"]["std"] == pytest.approx(np.std(runs))
    assert E.settings_for("depth") == E.ProbeSettings(lr=1e-2, weight_decay=0.0, epochs=60)
    assert E.settings_for("imu") == E.settings_for("audio") == E.ProbeSettings(1.6e-3, 0.05, 50)


def torch_reference_probe(x, y, c, st, seed):
    """The same probe with torch.optim.AdamW and nn.Linear, batches shuffled by the same generator."""
    x, y = torch.tensor(x), torch.tensor(y)
    lin = torch.nn.Linear(x.shape[1], c, dtype=torch.float64)
    torch.nn.init.zeros_(lin.weight), torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.AdamW(lin.parameters(), lr=st.lr, weight_decay=st.weight_decay)
    g = torch.Generator().manual_seed(seed)
    for _ in range(st.epochs):
        for idx in torch.randperm(len(x), generator=g).split(min(st.batch_size, len(x))):
            loss = torch.nn.functional.cross_entropy(lin(x[idx]), y[idx])
            opt.zero_grad(), loss.backward(), opt.step()
    return lin.weight.detach().numpy().T, lin.bias.detach().numpy()


def test_probe_trainer_matches_torch_adamw():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(2, 37, 6)), rng.integers(0, 4, size=(2, 37))  # 37 items: a short last batch
    st = E.ProbeSettings(lr=1e-2, weight_decay=0.05, epochs=7, batch_size=8)
    probes = E.train_probes(x, y, 4, st, seeds=(3, 4))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: thread start-up would dominate on a busy machine
    try:
        ref = [torch_reference_probe(x[s], y[s], 4, st, seed) for s, seed in enumerate((3, 4))]
    finally:
        torch.set_num_threads(threads)
    for s, (w, b) in enumerate(ref):
        np.testing.assert_allclose(probes.weight[s], w, atol=1e-9)
        np.testing.assert_allclose(probes.bias[s], b, atol=1e-9)


# ---- arithmetic and fusion -----------------------------------------------------------------------------------


def test_compose_and_fuse_match_numpy():
    rng = np.random.default_rng(7)
    a, b = rng.normal(size=(5, 8)) * 3, rng.normal(size=(5, 8)) * 0.1
    ref = _unit(0.95 * _unit(a) + 0.05 * _unit(b))
    np.testing.assert_allclose(E.fuse(a, b).numpy(), ref, atol=1e-6)
    raw = 0.5 * _unit(a[0]) + 0.5 * _unit(b[0])
    np.testing.assert_allclose(E.compose([a[0], b[0]], normalize=False).numpy(), raw, atol=1e-6)
    with pytest.raises(ValueError, match="2 embeddings but 3 weights"):
        E.compose([a, b], [1, 1, 1])


def test_nearest_and_attribute_share():
    rng = np.random.default_rng(8)
    g = rng.normal(size=(30, 8))
    q = rng.normal(size=(4, 8))
    s, i = E.nearest(q, g, k=3)
    ref = np.argsort(-(_unit(q) @ _unit(g).T), 1)[:, :3]
    assert i.tolist() == ref.tolist()
    idx = np.array([[0, 1], [2, 3]])
    color, digit = np.array([0, 0, 1, 1]), np.array([5, 6, 5, 5])
    # query 0 wants (0, 5): item 0 yes, item 1 no; query 1 wants (1, 5): both yes -> 3 of 4
    assert E.share_with_attributes(idx, [color, digit], [[0, 1], [5, 5]]) == 75.0


def test_arithmetic_combines_attributes_from_two_sources():
    rng = np.random.default_rng(9)
    A, B = rng.normal(size=(4, 32)), rng.normal(size=(5, 32))
    ai, bi = np.meshgrid(np.arange(4), np.arange(5), indexing="ij")
    ai, bi = ai.ravel(), bi.ravel()
    gallery = _unit(_unit(A[ai]) + _unit(B[bi]))  # one item per attribute combination
    qa, qb = rng.integers(0, 4, 12), rng.integers(0, 5, 12)
    a = A[qa] + 0.1 * rng.normal(size=(12, 32))
    b = B[qb] + 0.1 * rng.normal(size=(12, 32))
    out = E.arithmetic(a, b, gallery, [ai, bi], [qa, qb], k=1)
    assert out["share@1[a+b]"] == 100.0
    assert out["share@1[a]"] < 60 and out["share@1[b]"] < 60  # one source alone finds only one attribute

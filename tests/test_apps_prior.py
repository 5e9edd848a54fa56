"""The decoder's mean-shift prior (`bindkit.apps.prior`): its means and shift against a numpy re-derivation, its file,
and `generate` moving each query term by its own modality's offset (and not with `prior=False`)."""

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

import bindkit
from bindkit.apps import generate
from bindkit.apps.decoder import Decoder, DecoderConfig
from bindkit.apps.generate import DecoderGenerator, model_fingerprint
from bindkit.apps.prior import PRIOR, MeanShiftPrior
from bindkit.apps.query import embed_query, term_modality

pytest.importorskip("diffusers")


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


def _embeddings(d: int = 8, seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    # two cones: image rows around +e0, audio rows around +e1, at random scales (fit normalises them)
    img = rng.normal(size=(50, d)) * 0.3 + np.eye(d)[0] * 2
    aud = (rng.normal(size=(40, d)) * 0.3 + np.eye(d)[1] * 2) * rng.uniform(0.5, 3, size=(40, 1))
    return {"image": torch.tensor(img, dtype=torch.float32), "audio": torch.tensor(aud, dtype=torch.float32)}


def test_fit_and_shift_match_a_numpy_derivation():
    """Means are of the unit rows; a shift adds mean(image) - mean(audio) and renormalises; the audio mean lands on
    the image mean's direction; image queries, unknown modalities and raw vectors (None) pass unchanged."""
    emb = _embeddings()
    prior = MeanShiftPrior.fit(emb)
    mu = {m: _unit(e.numpy().astype(np.float64)).mean(0) for m, e in emb.items()}
    assert sorted(prior.means) == ["audio", "vision"] and prior.width == 8
    np.testing.assert_allclose(prior.means["vision"].numpy(), mu["image"], atol=1e-6)
    np.testing.assert_allclose(prior.means["audio"].numpy(), mu["audio"], atol=1e-6)
    q = _unit(emb["audio"].numpy()[:5].astype(np.float64))
    want = _unit(q + mu["image"] - mu["audio"])
    np.testing.assert_allclose(prior.shift(torch.tensor(q, dtype=torch.float32), "audio").numpy(), want, atol=1e-5)
    moved = prior.shift(torch.tensor(mu["audio"], dtype=torch.float32), "audio").numpy()
    np.testing.assert_allclose(moved, _unit(mu["image"]), atol=1e-5)
    x = torch.tensor(q, dtype=torch.float32)
    for modality in ("image", "vision", "thermal", None):
        assert prior.shift(x, modality) is x
    # the shift moves audio queries towards the image cone: closer to every image row than before, on average
    imgs = torch.tensor(_unit(emb["image"].numpy()))
    assert (prior.shift(x, "audio") @ imgs.T).mean() > (x @ imgs.T).mean() + 0.5


def test_prior_file_round_trip_and_bad_means(tmp_path):
    prior = MeanShiftPrior.fit(_embeddings())
    assert prior.save(tmp_path) == tmp_path / PRIOR
    back = MeanShiftPrior.load(tmp_path)
    assert back is not None and sorted(back.means) == sorted(prior.means)
    for m in prior.means:
        torch.testing.assert_close(back.means[m], prior.means[m], rtol=0, atol=0)
    assert MeanShiftPrior.load(tmp_path / "none") is None
    with pytest.raises(ValueError, match="needs the 'vision' mean"):
        MeanShiftPrior({"audio": torch.zeros(4)})
    with pytest.raises(ValueError, match=r"one \(D,\) vector"):
        MeanShiftPrior({"vision": torch.zeros(4), "audio": torch.zeros(5)})


def _model_and_folder(tmp_path, prior_width: int | None = None):
    cfg = bindkit.get_config("imagebind_tiny")
    torch.manual_seed(0)
    model = bindkit.ImageBind(cfg).eval()
    d = cfg.out_dim
    dcfg = DecoderConfig(embed_dim=d, image_size=8, channels=(8, 16), steps=2, model_key=model_fingerprint(model))
    folder = Decoder(dcfg).save(tmp_path / "decoder")
    g = torch.Generator().manual_seed(1)
    means = {m: torch.randn(prior_width or d, generator=g) * 0.3 for m in ("vision", "text", "audio")}
    MeanShiftPrior(means).save(folder)
    return model, folder


class _Capture:
    """A generator that records the embedding it is asked to draw from (the decoder's own prior attached)."""

    def __init__(self, folder):
        inner = DecoderGenerator(folder)
        self.embed_dim, self.model_key, self.prior, self.decoder = inner.embed_dim, "", inner.prior, inner.decoder
        self.seen: list[torch.Tensor] = []

    def sample(self, emb, **_):
        self.seen.append(emb[0].clone())
        return []


def test_generate_shifts_each_term_by_its_modality(tmp_path, one_torch_thread):
    """A text term moves by the text offset and an audio file by the audio offset, before the weighted sum;
    without `prior=True` (the CLI's --prior) the raw sum is drawn; a raw vector term is left as it is."""
    model, folder = _model_and_folder(tmp_path)
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.1 * np.sin(np.linspace(0, 2000, 16000)).astype(np.float32), 16000)
    assert term_modality("file", wav) == "audio" and term_modality("text", "x") == "text"
    assert term_modality("vector", np.zeros(3)) is None
    vec = torch.randn(model.config.out_dim)
    query = [("text", "a dog", 1.0), ("file", wav, 0.5), ("vector", vec, 2.0)]
    gen = _Capture(folder)
    generate(model, query, folder, generator=gen, prior=True)
    generate(model, query, folder, generator=gen)
    t, a = (embed_query(model, q).vector for q in ("a dog", wav))
    mu = {m: v.numpy().astype(np.float64) for m, v in gen.prior.means.items()}
    v = _unit(vec.numpy().astype(np.float64))
    shifted = 1.0 * _unit(t.numpy() + mu["vision"] - mu["text"]) + 0.5 * _unit(a.numpy() + mu["vision"] - mu["audio"])
    np.testing.assert_allclose(gen.seen[0].numpy(), _unit(shifted + 2.0 * v), atol=1e-5)
    np.testing.assert_allclose(gen.seen[1].numpy(), _unit(t.numpy() + 0.5 * a.numpy() + 2.0 * v), atol=1e-5)


def test_a_prior_of_another_width_is_refused(tmp_path):
    _, folder = _model_and_folder(tmp_path, prior_width=5)
    with pytest.raises(ValueError, match="prior width 5 does not match the decoder's"):
        DecoderGenerator(folder)



def test_cli_prior_flag_moves_the_query(tmp_path, one_torch_thread):
    """`bindkit generate --prior` draws from the shifted text embedding: another image than without the flag, and the
    same as the library call with `prior=True`."""
    from bindkit.cli import main

    model, folder = _model_and_folder(tmp_path)
    model_dir = bindkit.save_model(model, tmp_path / "m")
    run = lambda out, *flag: main(["generate", "--model", str(model_dir), "--text", "a dog", "--pipeline",  # noqa: E731
                                   str(folder), "--out", str(tmp_path / out), "--steps", "2", *flag])  # fmt: skip
    run("plain")
    run("prior", "--prior")
    plain, prior = (np.asarray(Image.open(tmp_path / d / "0-0.png")) for d in ("plain", "prior"))
    assert not np.array_equal(plain, prior)
    lib = generate(model_dir, "a dog", folder, steps=2, prior=True)[0]
    assert np.array_equal(np.asarray(lib), prior)

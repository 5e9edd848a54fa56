"""`bindkit.apps.generate` with a tiny random Stable unCLIP pipeline built here from configs (no network), and the
CLI. The pipeline's UNet is hooked to see what reaches its image-embedding (class) input and its text input."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import bindkit
from bindkit.apps import Embedding, embed_query, generate
from bindkit.cli import main

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

WIDTH = 128  # imagebind_tiny's embedding width


def _tokenizer(folder: Path):
    """A CLIP BPE tokenizer over single letters (a tiny vocab and an empty merges file)."""
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)} | {c + "</w>": 26 + i for i, c in enumerate(letters)}
    vocab |= {"<|startoftext|>": 52, "<|endoftext|>": 53}
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


def tiny_unclip(folder: Path, width: int = WIDTH, image_unet: bool = True) -> Path:
    """A random StableUnCLIPImg2ImgPipeline (no image encoder) saved to `folder`: 8x8 latents, 16 px images."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        DDPMScheduler,
        StableUnCLIPImg2ImgPipeline,
        UNet2DConditionModel,
    )
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
        StableUnCLIPImageNormalizer,
    )
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    cond = dict(class_embed_type="projection", projection_class_embeddings_input_dim=2 * width) if image_unet else {}
    unet = UNet2DConditionModel(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32,
                                attention_head_dim=4, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), **cond)  # fmt: skip
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16),
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=8, sample_size=16)  # fmt: skip
    text = CLIPTextModel(CLIPTextConfig(vocab_size=54, hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                                        num_attention_heads=4, max_position_embeddings=16, bos_token_id=52,
                                        eos_token_id=53, pad_token_id=53))  # fmt: skip
    normalizer = StableUnCLIPImageNormalizer(embedding_dim=width)
    with torch.no_grad():
        normalizer.mean.normal_(0, 0.5)
        normalizer.std.uniform_(0.5, 1.5)
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=None, image_encoder=None, image_normalizer=normalizer,
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"),
        tokenizer=_tokenizer(folder.parent / f"{folder.name}-vocab"), text_encoder=text, unet=unet,
        scheduler=DDIMScheduler(beta_schedule="scaled_linear"), vae=vae,
    )  # fmt: skip
    pipe.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, one_torch_thread) -> Path:
    return tiny_unclip(tmp_path_factory.mktemp("unclip") / "pipe")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    return bindkit.save_model(bindkit.ImageBind(bindkit.get_config("imagebind_tiny")),
                              tmp_path_factory.mktemp("model") / "m")  # fmt: skip


@pytest.fixture(scope="module")
def model(model_dir):
    return bindkit.load_model(model_dir).eval()


def _hooked(pipeline: Path):
    """A generator whose UNet records the class labels and text states of every call."""
    from bindkit.apps.unclip import UnclipGenerator

    gen = UnclipGenerator(pipeline)
    seen: list[dict] = []
    gen.pipe.unet.register_forward_pre_hook(
        lambda mod, args, kw: seen.append({k: kw[k].clone() for k in ("class_labels", "encoder_hidden_states")}),
        with_kwargs=True,
    )
    return gen, seen


def test_embedding_reaches_the_image_conditioning_not_the_text_path(pipeline, model):
    gen, seen = _hooked(pipeline)
    v = torch.randn(2, WIDTH)
    images = {}
    for i in range(2):
        q = Embedding(torch.nn.functional.normalize(v[i], dim=0), embed_query(model, "x").model_key)
        images[i] = generate(model, q, pipeline, steps=2, seed=0, generator=gen, noise_level=0)
    first, second = seen[0], seen[2]  # one UNet call per step, two steps per image
    # classifier-free guidance: rows (unconditional zeros, conditional); class labels = [embedding, noise emb]
    want = torch.nn.functional.normalize(v[0], dim=0) * gen.auto_norm()
    assert first["class_labels"].shape == (2, 2 * WIDTH)
    assert torch.count_nonzero(first["class_labels"][0, :WIDTH]) == 0
    # noise level 0 still adds sqrt(1 - alphas_cumprod[0]) ~ 6e-3 of normalised noise
    torch.testing.assert_close(first["class_labels"][1, :WIDTH], want, atol=0.05, rtol=0)
    # the norm `auto` picks is sqrt(sum(mean^2 + std^2)) of the pipeline's normalizer (re-derived by hand)
    n = gen.pipe.image_normalizer
    assert gen.auto_norm() == pytest.approx(float(np.sqrt((n.mean.detach().numpy() ** 2 +
                                                           n.std.detach().numpy() ** 2).sum())), rel=1e-5)  # fmt: skip
    # the text path is the empty prompt for both queries; only the image conditioning changed
    torch.testing.assert_close(first["encoder_hidden_states"], second["encoder_hidden_states"])
    assert not torch.allclose(first["class_labels"][1, :WIDTH], second["class_labels"][1, :WIDTH])
    assert not np.array_equal(np.asarray(images[0][0]), np.asarray(images[1][0]))


def test_outputs_are_deterministic_for_a_seed(pipeline, model, tmp_path):
    a = generate(model, "a dog", pipeline, steps=2, seed=3, out=tmp_path / "a")
    b = generate(model, "a dog", pipeline, steps=2, seed=3)
    c = generate(model, "a dog", pipeline, steps=2, seed=4)
    assert np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert not np.array_equal(np.asarray(a[0]), np.asarray(c[0]))
    assert a[0].size == (16, 16)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["3-0.png"]


def test_weighted_terms_are_embedding_arithmetic(model):
    a, b = embed_query(model, "a cat").vector, embed_query(model, "the sea").vector
    both = embed_query(model, [("text", "a cat", 1.0), ("text", "the sea", 2.0)]).vector
    torch.testing.assert_close(both, torch.nn.functional.normalize(a + 2 * b, dim=0))


def test_width_is_checked_before_any_compute(pipeline, model, tmp_path):
    gen, seen = _hooked(pipeline)
    with pytest.raises(ValueError, match="width 129 does not match"):
        generate(model, np.ones(WIDTH + 1), pipeline, steps=2, generator=gen, out=tmp_path / "o")
    narrow = tiny_unclip(tmp_path / "narrow", width=64)
    with pytest.raises(ValueError, match="width 128 .* does not match the generator's image-embedding width 64"):
        generate(model, "a dog", narrow, steps=2, out=tmp_path / "o")
    assert seen == [] and not (tmp_path / "o").exists()


def test_embedding_of_another_model_is_refused(pipeline, model, tmp_path):
    torch.manual_seed(1)
    other = bindkit.ImageBind(bindkit.get_config("imagebind_tiny")).eval()
    emb = embed_query(other, "a dog")
    gen, seen = _hooked(pipeline)
    with pytest.raises(ValueError, match="comes from model"):
        generate(model, emb, pipeline, steps=2, generator=gen, out=tmp_path / "o")
    assert seen == [] and not (tmp_path / "o").exists()


def test_bad_pipeline_folders_name_the_problem(pipeline, model, tmp_path):
    broken = tmp_path / "no-vae"
    shutil.copytree(pipeline, broken)
    shutil.rmtree(broken / "vae")
    with pytest.raises(FileNotFoundError, match=r"lacks the part\(s\) \['vae'\]"):
        generate(model, "a dog", broken, steps=2, out=tmp_path / "o")
    plain = tiny_unclip(tmp_path / "plain", image_unet=False)
    with pytest.raises(ValueError, match="UNet takes no image embedding"):
        generate(model, "a dog", plain, steps=2, out=tmp_path / "o")
    with pytest.raises(ValueError, match="steps must be a positive int"):
        generate(model, "a dog", pipeline, steps=0, out=tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_cli_generate_writes_images(pipeline, model_dir, tmp_path, capsys):
    out = tmp_path / "out"
    main(["generate", "--model", str(model_dir), "--text", "a dog", "--text", "snow", "--weight", "1",
          "--weight", "0.5", "--pipeline", str(pipeline), "--out", str(out), "--steps", "2", "--num-images", "2"])  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["0-0.png", "0-1.png"]
    assert "0-0.png" in capsys.readouterr().out

"""CLIP tokenizer: exact parity with the official tokens, cleaning, truncation, caching, bad input."""

import html
import json
import random

import ftfy
import pytest
import torch
from safetensors.torch import load_file

from bindkit.data import LoadError, get_tokenizer, tokenize
from bindkit.data.text import _PLAIN, EOT, SOT, clean


@pytest.fixture(scope="module")
def rows(fixtures_dir):
    root = fixtures_dir / "preprocessing"
    rows = json.loads((root / "cases.json").read_text())["cases"]["text.all"]["rows"]
    return rows, load_file(root / "outputs.safetensors")["text.tokens"]


def test_all_fixture_strings_exact_batched_and_one_by_one(rows):
    rows, ref = rows
    texts = [r["text"] for r in rows]
    assert torch.equal(tokenize(texts), ref)
    for i, t in enumerate(texts):
        assert torch.equal(tokenize(t)[0], ref[i]), (i, t)


def test_cleaning_and_counts_match_the_fixture(rows):
    rows, _ = rows
    tok = get_tokenizer()
    for r in rows:
        assert clean(r["text"]) == r["cleaned_lowercased"], r["row"]
        assert len(tok.encode(r["text"])) == r["bpe_tokens"], r["row"]


def test_model_fixture_strings(fixtures_dir):
    model = fixtures_dir / "model"
    strings = json.loads((model / "cases.json").read_text())["cases"]["text"]["strings"]
    ref = load_file(model / "cases.safetensors")["text.input"]
    assert torch.equal(tokenize(strings), ref)
    assert tokenize(strings).argmax(-1).tolist() == [6, 11, 1, 76, 3]


def test_documented_examples():
    t = tokenize(["A dog.", "A car"])
    assert t[0, :6].tolist() == [SOT, 320, 1929, 269, EOT, 0]
    assert t[1, :5].tolist() == [SOT, 320, 1615, EOT, 0]
    assert t.dtype == torch.int64 and t.shape == (2, 77)


def test_plain_text_fast_path_is_what_ftfy_and_html_would_do():
    rng = random.Random(0)
    alphabet = [chr(c) for c in range(0x20, 0x7F) if chr(c) != "&"] + ["\t", "\n"]
    for _ in range(2000):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert _PLAIN.fullmatch(s)
        assert html.unescape(html.unescape(ftfy.fix_text(s))) == s


def test_short_context_keeps_the_end_token():
    long = " ".join(["dog"] * 100)
    t = tokenize([long, "a cat"], context_length=32)
    assert t.shape == (2, 32)
    assert t[0, 0] == SOT and t[0, 31] == EOT and (t[0, 1:31] == t[0, 1]).all()
    assert torch.equal(t[1], tokenize("a cat")[0, :32])


def test_tokenizer_is_built_once():
    assert get_tokenizer() is get_tokenizer()


def test_non_strings_are_named():
    with pytest.raises(LoadError) as e:
        tokenize(["ok", 3, None, b"bytes"])
    msg = str(e.value)
    assert "3 of 4" in msg and "[1] 3: not a string (int)" in msg and "[2]" in msg and "[3]" in msg
    tokens, skipped = tokenize(["ok", 3, "fine"], errors="skip")
    assert [s.index for s in skipped] == [1]
    assert torch.equal(tokens, tokenize(["ok", "fine"]))
    assert tokenize([]).shape == (0, 77)


def test_batch_equals_one_by_one_on_mixed_and_repeated_strings(rows):
    rows, ref = rows
    rng = random.Random(2)
    idx = [rng.randrange(len(rows)) for _ in range(300)]  # repeats, ftfy rows and plain rows mixed
    texts = [rows[i]["text"] for i in idx] + ["a\x00b", "tab\there", "x " * 50]
    out = tokenize(texts)
    assert torch.equal(out[:300], ref[idx])
    for i in range(300, len(texts)):
        assert torch.equal(out[i], tokenize(texts[i])[0])

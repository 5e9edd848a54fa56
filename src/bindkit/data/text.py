"""The CLIP byte-level BPE tokenizer (reference §B.2), built once and cached, with a batched `tokenize`.

Per string: `ftfy.fix_text`, `html.unescape` twice, strip, collapse Unicode whitespace runs to one space, strip,
lower-case; split with the CLIP pattern; map each piece's UTF-8 bytes to printable characters; merge with the BPE
ranks of the vocabulary file shipped in `bindkit/assets`. Row layout: `[SOT] + ids[:context-2] + [EOT]`, zero-padded.
So the end token is always present (the current official behaviour), which the text head's argmax pooling needs.
"""

from __future__ import annotations

import gzip
import html
from collections.abc import Sequence
from itertools import chain
from functools import lru_cache
from importlib import resources

import ftfy
import numpy as np
import regex
import torch

from bindkit.data.errors import LoadError, LoadResult, Skipped, check_errors, describe

SOT, EOT = 49406, 49407
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
NUM_MERGES = 49152 - 256 - 2  # merge lines used from the file (after its header line)
_PATTERN = (
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
)
_WS = regex.compile(r"\s+")
# Printable ASCII plus tab/newline without '&': ftfy and html.unescape leave such text unchanged (tested).
_PLAIN = regex.compile(r"[\x20-\x25\x27-\x7e\t\n]*")
_SEP = "\x00"  # closes each row of a batch joined for one regex pass; cleaned text never holds a NUL
_JOIN = f" {_SEP} "
_PLAIN_OR_SEP = regex.compile(r"[\x20-\x25\x27-\x7e\t\n\x00]*")


def _byte_chars() -> dict[int, str]:
    """Reversible byte -> printable unicode character map of byte-level BPE."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def clean(text: str) -> str:
    """CLIP's text cleaning and lower-casing: what the tokenizer actually splits."""
    if not _PLAIN.fullmatch(text):  # the slow path only where ftfy/html can change something
        text = html.unescape(html.unescape(ftfy.fix_text(text)))
    return _WS.sub(" ", text.strip()).strip().lower()


class Tokenizer:
    """CLIP BPE tokenizer; `encode` gives the BPE ids of one string, `__call__` a padded batch."""

    def __init__(self, vocab_path: str | None = None):
        if vocab_path is None:
            raw = resources.files("bindkit.assets").joinpath(VOCAB_FILE).read_bytes()
        else:
            raw = open(vocab_path, "rb").read()
        lines = gzip.decompress(raw).decode("utf-8").split("\n")[1 : NUM_MERGES + 1]
        merges = [tuple(line.split()) for line in lines]
        self.byte_chars = _byte_chars()
        chars = list(self.byte_chars.values())
        vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
        vocab += ["<|startoftext|>", "<|endoftext|>"]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.pattern = regex.compile(_PATTERN, regex.IGNORECASE)
        # raw pre-token -> its ids; the special tokens map straight to their ids
        self.cache: dict[str, tuple[int, ...]] = {"<|startoftext|>": (SOT,), "<|endoftext|>": (EOT,), _SEP: (-1,)}

    def bpe(self, word: str) -> list[str]:
        """Merge the byte-characters of one pre-token by rank; the last symbol carries `</w>`."""
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == best[0] and parts[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def word_ids(self, piece: str) -> tuple[int, ...]:
        """Ids of one pre-token (cached)."""
        ids = self.cache.get(piece)
        if ids is None:
            chars = "".join(self.byte_chars[b] for b in piece.encode("utf-8"))
            ids = self.cache[piece] = tuple(self.encoder[t] for t in self.bpe(chars))
        return ids

    def encode(self, text: str) -> list[int]:
        """BPE ids of one string, without start/end tokens."""
        return [i for piece in self.pattern.findall(clean(text)) for i in self.word_ids(piece)]

    def __call__(self, texts: Sequence[str], context_length: int = 77) -> torch.Tensor:
        """`[N, context_length]` int64 rows `[SOT, ids..., EOT, 0...]`, cut so EOT always fits."""
        if not texts:
            return torch.zeros((0, context_length), dtype=torch.int64)
        # Whitespace only separates pieces, so collapsing/stripping it cannot change them: the batch is
        # lower-cased and split in one regex pass, with a separator piece closing every row.
        joined = _JOIN.join(texts) + _JOIN
        if joined.count(_SEP) == len(texts) and _PLAIN_OR_SEP.fullmatch(joined):
            joined = joined.lower()
        else:  # some rows need ftfy/html cleaning, which removes NULs, so the separators stay unique
            joined = _JOIN.join(clean(t) for t in texts) + _JOIN
        pieces = self.pattern.findall(joined)
        for p in set(pieces).difference(self.cache):  # each new word across the batch: BPE once
            self.word_ids(p)
        flat = chain.from_iterable(map(self.cache.__getitem__, pieces))
        return torch.from_numpy(_pack(np.fromiter(flat, dtype=np.int64), len(texts), context_length))


def _pack(flat: np.ndarray, n: int, context_length: int) -> np.ndarray:
    """Rows of ids closed by -1 markers -> zero-padded `[n, context_length]` with SOT/EOT, vectorised."""
    ends = np.flatnonzero(flat < 0)  # (n,) marker position per row
    starts = np.concatenate(([0], ends[:-1] + 1))
    lens = np.minimum(ends - starts, context_length - 2)  # keep room for EOT
    out = np.zeros((n, context_length), dtype=np.int64)
    out[:, 0] = SOT
    offset = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)  # position within its row
    out[np.repeat(np.arange(n), lens), 1 + offset] = flat[np.repeat(starts, lens) + offset]
    out[np.arange(n), lens + 1] = EOT
    return out


@lru_cache(maxsize=1)
def get_tokenizer() -> Tokenizer:
    """The shared tokenizer, built on first use (about 0.1 s) and reused afterwards."""
    return Tokenizer()


def tokenize(
    texts: str | Sequence[str], context_length: int = 77, errors: str = "raise"
) -> torch.Tensor | LoadResult:
    """Strings -> `[N, context_length]` int64 CLIP token ids (SOT 49406, EOT 49407, zero padding)."""
    check_errors(errors)
    if context_length < 2:
        raise ValueError(f"context_length must be at least 2 (start and end tokens), got {context_length}")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, Sequence):
        raise TypeError(f"expected a string or a list of strings, got {type(texts).__name__}")
    bad = [Skipped(i, describe(t), f"not a string ({type(t).__name__})") for i, t in enumerate(texts)
           if not isinstance(t, str)]  # fmt: skip
    if bad and errors == "raise":
        raise LoadError("text", len(texts), bad)
    good = [t for t in texts if isinstance(t, str)] if bad else list(texts)
    tokens = get_tokenizer()(good, context_length)
    return LoadResult(tokens, bad) if errors == "skip" else tokens

"""The CLIP byte-level BPE tokenizer (reference §B.2), built once and cached, with a batched `tokenize`.

Per string: `ftfy.fix_text`, `html.unescape` twice, strip, collapse Unicode whitespace runs to one space, strip,
lower-case; split with the CLIP pattern; map each piece's UTF-8 bytes to printable characters; merge with the BPE
ranks of the vocabulary file shipped in `bindkit/assets`. Row layout: `[SOT] + ids[:context-2] + [EOT]`, zero-padded.
So the end token is always present (the current official behaviour), which the text head's argmax pooling needs.
"""

from __future__ import annotations

import gzip
import html
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from functools import lru_cache
from importlib import resources
from itertools import accumulate, chain
from typing import Literal, overload

import ftfy
import numpy as np
import regex
import torch

from bindkit.data.errors import LoadError, LoadResult, Skipped, check_errors, describe

SOT, EOT = 49406, 49407
VOCAB_FILE = "bpe_simple_vocab_16e6.txt.gz"
NUM_MERGES = 49152 - 256 - 2  # merge lines used from the file (after its header line)
_PATTERN = r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
_WS = regex.compile(r"\s+")
# Printable ASCII plus tab/newline without '&': ftfy and html.unescape leave such text unchanged (tested).
_PLAIN = regex.compile(r"[\x20-\x25\x27-\x7e\t\n]*")
_SEP = "\x00"  # closes each row of a joined batch; cleaned text never holds a NUL (ftfy removes it)
_JOIN = f" {_SEP} "
_NOT_PLAIN = regex.compile(r"[^\x20-\x25\x27-\x7e\t\n\x00]+")
MAX_CACHED_CHUNKS = 1 << 20
SLICE = 8192  # rows per vectorised pass


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


def _prepare(text: str) -> str:
    """`clean` up to whitespace, which only separates pieces: `.split()` of the result gives the same chunks.

    `str.split` and the CLIP pattern's `\\s` disagree only on U+001C-U+001F, which plain text lacks and ftfy and
    html.unescape remove.
    """
    return text.lower() if _PLAIN.fullmatch(text) else clean(text)


def _prepare_batch(texts: Sequence[str]) -> str:
    """`_prepare` of every row, joined, each row closed by the separator; Python work only on rows needing ftfy."""
    joined = _JOIN.join(texts) + _JOIN
    if joined.count(_SEP) != len(texts):  # a row holds a NUL itself: prepare row by row
        return _JOIN.join(map(_prepare, texts)) + _JOIN
    odd = _NOT_PLAIN.search(joined)
    if odd is None:
        return joined.lower()
    ends = list(accumulate(len(t) + len(_JOIN) for t in texts))  # offset just past each row's separator
    rows = joined.lower().split(_JOIN)  # plain rows are done; the others are cleaned below
    for i in {bisect_right(ends, m.start()) for m in _NOT_PLAIN.finditer(joined, odd.start())}:
        rows[i] = clean(texts[i])
    return _JOIN.join(rows)


class Tokenizer:
    """CLIP BPE tokenizer; `encode` gives the BPE ids of one string, `__call__` a padded batch."""

    def __init__(self, vocab_path: str | None = None):
        if vocab_path is None:
            raw = resources.files("bindkit").joinpath("assets", VOCAB_FILE).read_bytes()
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
        self.cache: dict[str, tuple[int, ...]] = {"<|startoftext|>": (SOT,), "<|endoftext|>": (EOT,)}
        self.chunks: dict[str, tuple[int, ...]] = {_SEP: (-1,)}  # whitespace-free chunk -> its ids

    def bpe(self, word: str) -> list[str]:
        """Merge the byte-characters of one pre-token by rank; the last symbol carries `</w>`."""
        parts = [*word[:-1], word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = set(zip(parts, parts[1:], strict=False))
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

    def remember(self, chunks: Iterable[str]) -> dict[str, tuple[int, ...]]:
        """The chunk cache, holding the ids of every given whitespace-free chunk (pieces never span whitespace)."""
        new = set(chunks).difference(self.chunks)
        if len(self.chunks) + len(new) > MAX_CACHED_CHUNKS:  # bound the memory of very long runs
            self.chunks = {_SEP: (-1,)}
        for c in new:
            self.chunks[c] = tuple(i for p in self.pattern.findall(c) for i in self.word_ids(p))
        return self.chunks

    def encode(self, text: str) -> list[int]:
        """BPE ids of one string, without start/end tokens."""
        chunks = _prepare(text).split()
        return list(chain.from_iterable(map(self.remember(chunks).__getitem__, chunks)))

    def __call__(self, texts: Sequence[str], context_length: int = 77) -> torch.Tensor:
        """`[N, context_length]` int64 rows `[SOT, ids..., EOT, 0...]`, cut so EOT always fits."""
        if len(texts) <= 8:  # a query or two: row by row beats the vectorised set-up
            out = np.zeros((len(texts), context_length), dtype=np.int64)
            for row, text in enumerate(texts):
                ids = self.encode(text)[: context_length - 2]
                out[row, 0], out[row, 1 : len(ids) + 1], out[row, len(ids) + 1] = SOT, ids, EOT
            return torch.from_numpy(out)
        if len(texts) > SLICE:  # bound the joined text and chunk list of huge calls
            parts = [self(texts[i : i + SLICE], context_length) for i in range(0, len(texts), SLICE)]
            return torch.cat(parts)
        where = {t: i for i, t in enumerate(dict.fromkeys(texts))}
        if len(where) < len(
            texts
        ):  # repeated strings (prompt templates, shared captions): tokenize each once
            return self(list(where), context_length)[[where[t] for t in texts]]
        chunks = _prepare_batch(texts).split()  # one C-level split; a separator chunk (id -1) closes each row
        known = self.remember(chunks)
        flat = np.fromiter(chain.from_iterable(map(known.__getitem__, chunks)), dtype=np.int64)
        return torch.from_numpy(_pack(flat, len(texts), context_length))


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
    """The shared tokenizer, built on first use (a fraction of a second) and reused afterwards."""
    return Tokenizer()


@overload
def tokenize(
    texts: str | Sequence[str], context_length: int = ..., errors: Literal["raise"] = ...
) -> torch.Tensor: ...
@overload
def tokenize(texts: str | Sequence[str], context_length: int = ..., errors: str = ...) -> torch.Tensor | LoadResult: ...
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

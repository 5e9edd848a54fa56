"""Fetch the official `imagebind_huge.pth` into the user's cache: resumable, verified, with a progress bar."""

from __future__ import annotations

import hashlib
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

if TYPE_CHECKING:  # annotations only: importing the hub stays free of torch
    import torch

    from bindkit.model import ImageBind


@dataclass(frozen=True)
class Remote:
    """A downloadable file with its expected size and sha256 (None = unchecked)."""

    url: str
    filename: str
    size: int | None
    sha256: str | None


# Size and sha256 come from the git-LFS pointers of public mirrors of the same file (reference §D).
IMAGEBIND_HUGE = Remote(
    url="https://dl.fbaipublicfiles.com/imagebind/imagebind_huge.pth",
    filename="imagebind_huge.pth",
    size=4_803_584_173,
    sha256="d6f6c22bedcc90708448d5d2fbb7b2db9c73f505dc89bd0b2e09b23af1b62157",
)
CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/bindkit`, else `~/.cache/bindkit` (never the working directory)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bindkit"


def download(
    remote: Remote = IMAGEBIND_HUGE,
    cache_dir: str | Path | None = None,
    sha256: str | None = "",
    progress: bool = True,
) -> Path:
    """Download `remote` into `cache_dir/checkpoints/`, resuming a partial `.part` file; return the final path.

    `sha256=""` checks the recorded hash, `None` skips the check, any other value replaces the recorded hash.
    """  # fmt: skip
    expected = remote.sha256 if sha256 == "" else sha256
    dest = Path(cache_dir or default_cache_dir()) / "checkpoints" / remote.filename
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    got = _fetch(remote.url, part, remote.size, progress)
    _verify(part, got, expected, remote.size)
    part.replace(dest)
    return dest


def _hash_file(path: Path) -> hashlib._Hash:
    """sha256 state over the bytes already downloaded, so a resumed download is still fully verified."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h


def _fetch(url: str, part: Path, size: int | None, progress: bool) -> str:
    """Append the rest of `url` to `part` with an HTTP Range request; return the sha256 of the whole file."""
    have = part.stat().st_size if part.is_file() else 0
    digest = _hash_file(part) if have else hashlib.sha256()
    if size is not None and have >= size:
        return digest.hexdigest()
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        if have and resp.status != 206:  # the server ignored the range: start again
            part.unlink()
            have, digest = 0, hashlib.sha256()
        length = resp.headers.get("Content-Length")
        total = size or (have + int(length) if length else None)
        bar = tqdm(total=total, initial=have, unit="B", unit_scale=True, desc=part.name, disable=not progress)
        with part.open("ab") as f, bar:
            while block := resp.read(CHUNK):
                f.write(block)
                digest.update(block)
                bar.update(len(block))
    return digest.hexdigest()


def _verify(part: Path, got: str, expected: str | None, size: int | None) -> None:
    """Raise (keeping the file for inspection) when the size or the sha256 differs."""
    actual = part.stat().st_size
    if size is not None and actual != size:
        raise OSError(f"{part}: downloaded {actual} bytes, expected {size}; run again to resume")
    if expected is not None and got != expected:
        raise ValueError(f"{part}: sha256 {got} does not match the expected {expected}; pass sha256=<hash> to "
                         "accept another file, or sha256=None to skip the check")  # fmt: skip


def load_pretrained(modalities: list[str] | None = None, device: str | torch.device = "cpu",
                    dtype: torch.dtype | None = None, cache_dir: str | Path | None = None,
                    progress: bool = True) -> ImageBind:  # fmt: skip
    """The official `imagebind_huge` weights (downloaded once into the cache), as a bindkit model in eval mode."""
    from bindkit.checkpoint import load_official_checkpoint

    path = download(IMAGEBIND_HUGE, cache_dir=cache_dir, progress=progress)
    return load_official_checkpoint(path, modalities=modalities, device=device, dtype=dtype)

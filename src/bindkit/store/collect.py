"""Turn the paths a user gives (folders, files, manifests) into a list of items to embed, each with its kind.

Folders are walked recursively in sorted order; names starting with `.` are ignored. A manifest is a `.jsonl` file
(one JSON object per line) or a `.csv` with a header naming a `path` column. Each row gives `path` (relative to the
manifest's folder, or absolute) or, in JSONL only, an inline `text`; optional `modality` and `label`; any other
fields are kept as metadata. A row may instead map kinds to paths in `files` (one instance in several modalities,
as `bindkit.worlds.to_files` writes them); its `caption` then becomes an inline text item too. Files whose kind
cannot be decided, and anything that is not a regular file (FIFOs, sockets, devices, link loops), are returned as
skipped, with the reason; files whose content could not be read to decide their kind as failed. In a walked folder,
symbolic links that lead out of it are skipped unless `follow_links`.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bindkit.data.limits import file_problem
from bindkit.store.detect import DetectError, UnreadableFile, detect_modality, is_manifest, normalize_kind


@dataclass
class Entry:
    """One item to embed. `path` is absolute, or `manifest#L<line>` for an inline text."""

    path: str
    kind: str
    source: str  # the folder, file or manifest it was found through
    label: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    text: str | None = None  # inline text from a manifest

    @property
    def item(self) -> Any:
        """What the loader receives: the inline text, or the file's path."""
        return self.text if self.text is not None else Path(self.path)


def _outside(link: Path, root: Path, follow_links: bool) -> str | None:
    """Why a symbolic link under `root` is not followed (a loop, a dangling link, or out of the tree), or None."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # ELOOP (RuntimeError before Python 3.13) or a missing target
        missing = isinstance(e, FileNotFoundError)
        return "broken symbolic link (its target does not exist)" if missing else "symbolic link loop"
    if not follow_links and not target.is_relative_to(root):
        return f"symbolic link to {target}, outside {root}; not followed (pass --follow-links to follow it)"
    return None


def _walk(folder: Path, follow_links: bool = False) -> tuple[list[Path], list[tuple[str, str]]]:
    """(files, skipped) under `folder`; links that leave it are followed only with `follow_links`, loops never."""
    out, skipped, seen = [], [], {folder.resolve()}
    for root, dirs, files in os.walk(folder, followlinks=True):
        keep = []
        for d in sorted(d for d in dirs if not d.startswith(".")):
            p = Path(root) / d
            why = _outside(p, folder, follow_links) if p.is_symlink() else None
            if why is None and p.resolve() in seen:
                why = "symbolic link loop (a folder already walked)"
            if why:
                skipped.append((str(p), why))
                continue
            seen.add(p.resolve())
            keep.append(d)
        dirs[:] = keep
        for f in sorted(f for f in files if not f.startswith(".")):
            p = Path(root) / f
            why = _outside(p, folder, follow_links) if p.is_symlink() else None
            skipped += [(str(p), why)] if why else []
            out += [] if why else [p]
    return out, skipped


def _file_entry(path: Path, source: str, override: str | None, row: dict[str, Any]) -> Entry:
    if reason := file_problem(path):  # the real reason: a FIFO, a device, a link loop, missing...
        raise DetectError(reason)
    try:
        kind = normalize_kind(row["modality"]) if row.get("modality") else detect_modality(path, override)
    except DetectError:
        raise
    except Exception as e:  # any other failure while looking at the content is this file's, not the run's
        raise UnreadableFile(f"{type(e).__name__}: {e}") from e
    label = str(row.get("label", "") or "")
    meta = {
        k: v for k, v in row.items() if k not in ("path", "modality", "label", "text") and v not in ("", None)
    }
    return Entry(str(path), kind, source, label, meta)


def _manifest_rows(manifest: Path) -> list[dict[str, Any]]:
    if manifest.suffix.lower() == ".csv":
        with open(manifest, newline="", encoding="utf-8") as f:
            return [
                {k.strip().lower(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)
            ]
    rows = []
    for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ValueError(f"{manifest}:{n}: expected a JSON object, got {type(row).__name__}")
            rows.append({**row, "_line": n})
    return rows


def _row_entries(row: dict[str, Any], manifest: Path, line: int, override: str | None) -> list[Entry]:
    """The entries of one manifest row: its `path`, or each of its `files`, and its inline `text`/`caption`."""
    src = str(manifest)
    files = row.get("files")
    if files is not None and not isinstance(files, dict):
        raise DetectError("'files' must map modality names to paths")
    text = row.get("text", row.get("caption") if files else None)
    if not row.get("path") and not files and text is None:
        raise DetectError("row has no 'path', 'files' or 'text'")
    rest = {k: v for k, v in row.items() if k not in ("files", "text")}
    entries = []
    if text is not None:
        if not isinstance(text, str) or not text.strip():
            raise DetectError("'text' must be a non-empty string")
        meta = {k: v for k, v in rest.items() if k not in ("label", "modality", "path", "caption")}
        entries.append(Entry(f"{src}#L{line}", "text", src, str(row.get("label", "")), meta, text))
    if row.get("path"):
        entries.append(_file_entry((manifest.parent / str(row["path"])).resolve(), src, override, rest))
    for kind, rel in (files or {}).items():
        entries.append(
            _file_entry((manifest.parent / str(rel)).resolve(), src, override, {**rest, "modality": kind})
        )
    return entries


def _from_manifest(manifest: Path, override: str | None) -> tuple[list[Entry], list[tuple[str, str]]]:
    entries, skipped = [], []
    for i, row in enumerate(_manifest_rows(manifest)):
        line = row.pop("_line", i + 2)  # CSV: header is line 1
        try:
            entries += _row_entries(row, manifest, line, override)
        except (DetectError, ValueError) as e:
            skipped.append((f"{manifest}:{line}", str(e)))
    return entries, skipped


def collect(
    paths: list[str | Path], modality: str | None = None, follow_links: bool = False
) -> tuple[list[Entry], list[tuple[str, str]], list[str], list[tuple[str, str]]]:
    """(entries, skipped, roots, failed) for folders, files and manifests; entries unique by path.

    `skipped` (item, reason): not embeddable (unknown or ambiguous kind, missing, not a regular file, a link not
    followed); `failed` (item, reason): files whose content could not be read while deciding their kind.
    """
    entries: dict[str, Entry] = {}
    skipped: list[tuple[str, str]] = []
    failed: list[tuple[str, str]] = []
    roots: list[str] = []
    for given in paths:
        p = Path(given).expanduser().resolve()
        roots.append(str(p))
        if not p.exists():
            skipped.append((str(given), "not found"))
            continue
        if p.is_file() and is_manifest(p):
            try:
                found, bad = _from_manifest(p, modality)
            except (OSError, ValueError, UnicodeDecodeError) as e:
                found, bad = [], [(str(p), f"unreadable manifest ({e})")]
            skipped += bad
            entries.update((e.path, e) for e in found)
            continue
        files, not_followed = _walk(p, follow_links) if p.is_dir() else ([p], [])
        skipped += not_followed
        for f in files:
            if reason := file_problem(f):  # before anything opens it: a FIFO would block
                skipped.append((str(f), reason))
                continue
            if f != p and is_manifest(f):
                skipped.append((str(f), "a manifest inside a folder; pass it as an argument to use it"))
                continue
            try:
                entries.setdefault(str(f), _file_entry(f, str(p), modality, {}))
            except UnreadableFile as e:
                failed.append((str(f), str(e)))
            except DetectError as e:
                skipped.append((str(f), str(e)))
    return list(entries.values()), skipped, roots, failed

"""The hostile corpus (tests/hostile_corpus.py) through every loader and `bindkit embed`, each run in a child process
with a timeout and an address-space cap: no hang, no crash, no out-of-memory, no silent acceptance of a bad file,
and every refusal names its item and a reason (the expected one for the item's own loaders)."""

from __future__ import annotations

import json
import re
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hostile_corpus import LOADERS, Case, build_corpus
from store_fixtures import make_model

HERE = Path(__file__).resolve().parent
# Address space of each child: the loaders need ~1.5 GB (mostly torch's mappings), embed ~3 GB (oneDNN, LanceDB's
# threads); the bombs ask for 3-13 GB each.
MEMORY_CAP = {"loaders": 2 << 30, "embed": 4 << 30}
OUT_OF_MEMORY = re.compile(
    r"MemoryError|Unable to allocate|out of memory|std::bad_alloc|Cannot allocate", re.I
)
TIMEOUT = 150  # seconds per child; both take ~15 s on a quiet machine, ~50 s on this shared 2-core one


def _child(job: tuple[str, list[str]]) -> subprocess.CompletedProcess | str:
    """Run a child under its address-space cap; a timeout comes back as the string "timeout"."""
    name, args = job
    cap = MEMORY_CAP[name]
    try:
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (cap, cap)),
            cwd=HERE,
        )
    except subprocess.TimeoutExpired:
        return "timeout"


def _loader_problems(kind: str, cases: list[Case], run, log: Path) -> list[str]:
    """Everything wrong with one loader's run over the corpus."""
    recs = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    if not (recs and ("batch" in recs[-1] or "batch_crash" in recs[-1])):  # this loader did not finish
        how = "hung" if run == "timeout" else f"died (exit {run.returncode}: {run.stderr[-400:]})"
        if not recs:
            return [f"{kind}: never ran (the child {how})"]
        last = next(r["start"] for r in reversed(recs) if "start" in r)
        return [
            f"{kind}: the child {how} while loading {cases[last].path if isinstance(last, int) else last}"
        ]
    out, results = [], {r["i"]: r for r in recs if "i" in r}
    for i, c in enumerate(cases):
        r = results.get(i)
        if r and OUT_OF_MEMORY.search(r.get("reason", "") + r.get("crash", "")):
            out.append(f"{kind}: ran out of memory on {c.path} ({c.what}): {r}")
        elif r is None or "crash" in r:
            out.append(f"{kind}: {c.path} ({c.what}): {r and r['crash'] or 'no result'}")
        elif r["ok"] and c.bad and kind not in c.may_load:
            out.append(f"{kind}: silently accepted bad {c.path} ({c.what})")
        elif not r["ok"] and (not c.bad or kind in c.may_load) and kind in c.must_load:
            out.append(f"{kind}: refused good {c.path} ({c.what}): {r['reason']}")
        elif not r["ok"] and (str(c.path) not in r["item"] or not r["reason"].strip()):
            out.append(f"{kind}: refusal of {c.path} does not name it with a reason: {r}")
        elif not r["ok"] and kind in c.main and c.reason and not re.search(c.reason, r["reason"], re.I):
            out.append(f"{kind}: {c.path} ({c.what}) refused for {r['reason']!r}, expected /{c.reason}/")
    batch = next((r for r in recs if "batch" in r or "batch_crash" in r), {})
    refused = {i for i, r in results.items() if not r.get("ok")}
    if "batch_crash" in batch or {f[0] for f in batch.get("batch", [])} != refused:
        out.append(
            f"{kind}: errors='raise' over the corpus did not list exactly the refused items: {batch}"[:600]
        )
    return out


def _embed_problems(cases: list[Case], root: Path, run) -> list[str]:
    if run == "timeout":
        return ["bindkit embed hung"]
    if run.returncode != 0 or OUT_OF_MEMORY.search(run.stdout):
        return [f"bindkit embed failed (exit {run.returncode}): {run.stderr[-800:]}"]
    listed = {}
    for line in run.stdout.splitlines():
        m = re.match(r"\s+(failed|skipped)\s+(.*?): (.+)$", line)
        if m:
            listed[m[2]] = m[3]
    out = []
    for c in cases:
        if not c.in_tree:
            continue
        reason = listed.get(str(c.path))
        if c.embed == "fail" and not (reason and reason.strip()):
            out.append(f"embed: bad {c.path} ({c.what}) is not listed as failed or skipped with a reason")
        if c.embed == "ok" and reason is not None:
            out.append(f"embed: good {c.path} ({c.what}) was not embedded: {reason}")
    return out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile").resolve()
    cases = build_corpus(root / "corpus")
    (root / "paths.json").write_text(json.dumps([str(c.path) for c in cases]))
    return root, cases


def test_corpus_has_every_kind_of_hostile_file(corpus):
    _, cases = corpus
    bad = [c for c in cases if c.bad]
    assert len(cases) >= 200 and len(bad) >= 180
    for word in ("zero-length", "truncated", "named .", "60000x1", "30000x30000", "NaN", "pickled", "FIFO",
                 "non-UTF-8", "link out of the tree", "loop", "tty", "1 Hz", "1e300", "socket", "/dev/zero"):  # fmt: skip
        assert any(word in c.what for c in bad), word


def test_corpus_through_every_loader_and_embed(corpus, tmp_path):
    root, cases = corpus
    model = make_model(tmp_path / "model")
    jobs = {
        "loaders": [sys.executable, str(HERE / "hostile_corpus.py"), ",".join(LOADERS), str(root / "paths.json"),
                    str(tmp_path)],
        "embed": [sys.executable, "-m", "bindkit", "embed", str(root / "corpus"), "--store", str(tmp_path / "store"),
                  "--model", str(model), "--no-progress"],
    }  # fmt: skip
    with ThreadPoolExecutor(2) as pool:  # one child for every loader (one torch import), one for embed
        runs = dict(zip(jobs, pool.map(_child, jobs.items()), strict=True))
    problems = []
    for k in LOADERS:
        problems += _loader_problems(k, cases, runs["loaders"], tmp_path / f"{k}.jsonl")
    problems += _embed_problems(cases, root / "corpus", runs["embed"])
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems)

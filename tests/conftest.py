"""Shared pytest fixtures: where the official reference material lives, the quick demo run, one torch thread."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The read-only `../shared` folder next to the checkout (CI lays it there too)."""
    if not SHARED.is_dir():
        pytest.fail(
            f"reference folder {SHARED} is missing: the parity tests need ../shared next to the checkout"
        )
    return SHARED


@pytest.fixture(scope="session")
def fixtures_dir(shared_dir: Path) -> Path:
    """`../shared/fixtures/official`."""
    return shared_dir / "fixtures" / "official"


@pytest.fixture(scope="session")
def quick_demo(tmp_path_factory):
    """One `bindkit demo --quick` run (about 1.5 minutes here), shared by the demo, eval and page tests."""
    from bindkit.demo import run_demo

    return run_demo(run_root=tmp_path_factory.mktemp("demo-runs"), quick=True, progress=False)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module's tests, then the previous count: the training tests run many small ops on a
    shared 2-core machine, where OpenMP threads spin against each other (results do not depend on it)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)

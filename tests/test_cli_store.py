"""`bindkit search` on the shared test store: the CLI prints what the library's `search` returns."""

import pytest

from bindkit.cli import main
from bindkit.store import search
from store_fixtures import shared_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return shared_world(tmp_path_factory)


def test_search_cli_matches_library(world, capsys):
    wav = next(p for p in world["media"]["audio"] if str(p).endswith(".wav"))
    main(["search", "--store", str(world["db"]), "--model", str(world["model_dir"]), "--file", str(wav),
          "--text", "a dog", "--weight", "0.5", "--weight", "1.0", "-k", "3"])  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    hits = search(world["db"], world["model"], [("text", "a dog", 0.5), ("file", wav, 1.0)], k=3)
    assert [line.split()[-1] for line in lines] == [str(h.path) for h in hits]


def test_search_cli_rejects_mismatched_weights(world, capsys):
    with pytest.raises(SystemExit):
        main(["search", "--store", str(world["db"]), "--model", str(world["model_dir"]), "--text", "a", "--text",
              "b", "--weight", "1"])  # fmt: skip
    assert "bindkit: error: --weight has 1 values for 2 queries" in capsys.readouterr().err

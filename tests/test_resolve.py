"""`bindkit.load`: one resolver for a model in memory, a model folder, an official `.pth` and a config name; and the
import rules around it (no warnings at import, no sibling imports through the package face, process state only in
entry points)."""

import ast
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import bindkit
from bindkit import ImageBind, get_config

SRC = Path(bindkit.__file__).parent


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("resolve")
    torch.manual_seed(0)
    model = ImageBind(get_config("imagebind_test")).eval()
    bindkit.save_model(model, root / "model")
    bindkit.save_official_checkpoint(model, root / "official.pth")
    return root, model


def _equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_folder_and_pth_give_the_saved_weights(saved):
    root, model = saved
    assert _equal(bindkit.load(root / "model"), model) and _equal(bindkit.load(str(root / "model")), model)
    some = bindkit.load(root / "model", modalities=["vision", "text"])
    assert set(some.encoders) == {"vision", "text"} and not some.training
    pth = bindkit.load(root / "official.pth", modalities=["audio", "imu"], config="imagebind_test")
    ref = bindkit.load_official_checkpoint(root / "official.pth", get_config("imagebind_test"), ["audio", "imu"])
    assert _equal(pth, ref) and set(pth.encoders) == {"audio", "imu"}
    half = bindkit.load(root / "model", ["depth"], dtype=torch.bfloat16)
    assert next(half.parameters()).dtype == torch.bfloat16


def test_a_model_in_memory_is_used_as_it_is(saved):
    _, model = saved
    model.train()
    got = bindkit.load(model)
    assert got is model and not got.training


def test_a_config_name_warns_when_called_not_when_imported(saved):
    with pytest.warns(UserWarning, match="random weights"):
        m = bindkit.load("imagebind_tiny", modalities=["image"])
    assert set(m.encoders) == {"vision"}
    code = "import bindkit, bindkit.evaluate, bindkit.train, bindkit.store, bindkit.serve, bindkit.cli, bindkit.demo"
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]


def test_anything_else_is_named(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a registered config .*imagebind_huge"):
        bindkit.load(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="not a bindkit model folder"):
        bindkit.load(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a folder or a file never warns
        bindkit.load(saved[0] / "model", ["imu"])


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "bindkit" and node.level == 0:
            yield node.lineno, f"from bindkit import {', '.join(a.name for a in node.names)}"
        elif isinstance(node, ast.Import) and any(a.name == "bindkit" for a in node.names):
            yield node.lineno, "import bindkit"


def test_no_library_module_imports_through_the_package_face():
    found = [f"{p.relative_to(SRC)}:{line}: {what}" for p in sorted(SRC.rglob("*.py")) if p.name != "__init__.py"
             or p.parent != SRC for line, what in _imports(p)]  # fmt: skip
    assert not found, found


def _calls(path: Path, names: set[str]):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in names:
            yield node.lineno, node.func.attr


def test_process_state_only_in_entry_points():
    """Only `bindkit.process` (used by the CLI) starts process groups or installs signal handlers."""
    names = {"init_process_group", "destroy_process_group", "signal"}
    found = [f"{p.relative_to(SRC)}:{line}: {name}" for p in sorted(SRC.rglob("*.py")) if p.name != "process.py"
             for line, name in _calls(p, names)]  # fmt: skip
    assert not found, found

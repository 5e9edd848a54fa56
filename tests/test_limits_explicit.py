"""Issue 16 follow-ups: the loaders' header checks take an explicit `Limits` (the service's stricter caps go through
them without touching the process-wide ones), `/dev` paths are refused by name, and a CLI error that lists several
bad items is still one line naming each of them."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bindkit.data as data
from bindkit.cli import main
from bindkit.data import LoadError, get_limits
from bindkit.data import limits as L
from bindkit.serve.limits import Limits as ServiceLimits
from bindkit.serve.limits import check_decoded
from bindkit.serve.uploads import UploadError
from hostile_corpus import npy_header_only, npz_bomb, png_header, wav_header


def test_check_functions_take_explicit_limits():
    """Each check refuses one unit over an explicit cap and accepts at it, while the process-wide caps stay."""
    before = get_limits()
    tight = L.Limits(
        max_pixels=100, max_array_bytes=80, max_audio_seconds=2.0, max_imu_rows=10, max_file_bytes=5
    )
    L.check_pixels(10, 10, limits=tight)
    with pytest.raises(L.LimitError, match="10x11 = 110 pixels, over the limit of 100"):
        L.check_pixels(10, 11, limits=tight)
    L.check_array_header((10,), np.dtype("<f8"), limits=tight)  # 80 bytes
    with pytest.raises(L.LimitError, match="88 bytes once loaded, over the limit of 80"):
        L.check_array_header((11,), np.dtype("<f8"), limits=tight)
    L.check_audio(32000, 16000, 1, limits=tight)  # exactly 2 s
    with pytest.raises(L.LimitError, match="3 s long, over the limit of 2 s"):
        L.check_audio(48000, 16000, 1, limits=tight)
    with pytest.raises(L.ItemError, match="sample rate 1 Hz") as e:  # malformed, not "too large"
        L.check_audio(16, 1, 1, limits=tight)
    assert not isinstance(e.value, L.LimitError)
    L.check_rows(10, limits=tight)
    with pytest.raises(L.LimitError, match="11 rows"):
        L.check_rows(11, limits=tight)
    with pytest.raises(L.LimitError, match="6 bytes"):
        L.check_bytes(6, limits=tight)
    with pytest.raises(L.LimitError, match="over the limit of 100"):
        L.open_picture(png_header(20, 20), limits=tight)
    assert get_limits() is before and get_limits() == L.Limits()
    L.check_pixels(10, 11)  # the process-wide cap was never lowered


def test_service_limits_map_onto_the_loaders_checks(tmp_path):
    """check_decoded uses the loaders' checks with the service's caps: 413 over a cap, 422 for nonsense, and a
    file within the service's caps passes; the process-wide limits are untouched throughout."""
    before = get_limits()
    svc = ServiceLimits(max_pixels=1000, max_array_bytes=4000, max_seconds=2.0, max_csv_rows=3)
    lim = svc.loader_limits()
    assert (lim.max_pixels, lim.max_array_bytes, lim.max_audio_seconds, lim.max_imu_rows) == (
        1000,
        4000,
        2.0,
        3,
    )

    def status(name: str, blob: bytes) -> int | None:
        p = tmp_path / name
        p.write_bytes(blob)
        try:
            check_decoded(p, name, svc)
        except UploadError as e:
            assert str(e).startswith(f"{name}: "), e
            return e.status
        return None

    buf = io.BytesIO()
    np.save(buf, np.zeros((10, 50), np.float32))  # 2000 bytes
    assert status("ok.npy", buf.getvalue()) is None
    assert status("big.npy", npy_header_only((10, 51))) == 413  # 4080 bytes
    assert status("big.npz", npz_bomb((100, 100))) == 413  # 40000 bytes, from the member's header
    assert status("ok.png", png_header(30, 30)) is None
    assert status("big.png", png_header(40, 30)) == 413
    assert status("thin.png", png_header(200, 2)) == 413  # the service's own aspect rule (100:1 > 50:1)
    assert status("junk.png", b"\x89PNG\r\n\x1a\n" + bytes(40)) == 422
    assert status("ok.wav", wav_header(16000, data=bytes(64000))) is None  # exactly 2 s
    assert status("long.wav", wav_header(16000, data=bytes(96000))) == 413
    assert status("one_hz.wav", wav_header(1, data=bytes(64))) == 422
    rows = "t,ax,ay,az,gx,gy,gz\n"
    assert status("ok.csv", (rows + "0,0,0,0,0,0,0\n" * 3).encode()) is None
    assert status("long.csv", (rows + "0,0,0,0,0,0,0\n" * 4).encode()) == 413
    assert get_limits() is before


def test_dev_paths_are_refused_by_name(tmp_path):
    """A *regular* file under /dev (e.g. /dev/shm) is refused by its path alone, directly or through a link."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        pytest.skip("no writable /dev/shm")
    p = shm / f"bindkit-test-{uuid.uuid4().hex}.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(p)
    link = tmp_path / "innocent.png"
    link.symlink_to(p)
    try:
        assert os.path.isfile(p)  # a regular file: only its path says /dev
        for item in (p, link):
            with pytest.raises(LoadError, match=r"device path \(/dev/...\)"):
                data.load_images([str(item)])
    finally:
        p.unlink()


def test_cli_errors_listing_several_items_are_one_line(tmp_path, capsys):
    """`eval` on a CSV with two truncated PNGs: one line on stderr naming both files and the reason, exit 1."""
    from store_fixtures import make_model

    model = make_model(tmp_path / "model")
    rows = ["file,label"]
    for i in range(4):
        buf = io.BytesIO()
        Image.fromarray(np.full((32, 32, 3), 40 * i, np.uint8)).save(buf, "PNG")
        (tmp_path / f"i{i}.png").write_bytes(buf.getvalue() if i < 2 else buf.getvalue()[:60])
        rows.append(f"i{i}.png,{'ab'[i % 2]}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(SystemExit) as e:
        main(["eval", "--task", "csv", "--root", str(tmp_path / "labels.csv"), "--model", str(model), "--out",
              str(tmp_path / "out.json"), "--no-cache"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()[-1]  # the progress bar, closed, is on the line before
    assert e.value.code == 1 and err.startswith(
        "bindkit: error: 2 of 4 image item(s) could not be loaded: "
    ), err
    assert "i2.png': corrupt or truncated image" in err and "i3.png': corrupt or truncated image" in err, err


def test_eval_cli_refuses_depth_pictures_without_modality(tmp_path, capsys):
    """`bindkit eval --task csv` on 16-bit single-channel PNGs, without --modality: one line, exit 1, no scores."""
    rows = ["file,label"]
    for i in range(4):
        Image.fromarray(np.full((16, 16), 1000 * (i + 1), np.uint16)).save(tmp_path / f"d{i}.png")
        rows.append(f"d{i}.png,{i % 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "scores.json"
    with pytest.raises(SystemExit) as e:
        main(["eval", "--task", "csv", "--root", str(tmp_path / "labels.csv"), "--model", "imagebind_tiny",
              "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err
    assert e.value.code == 1 and len(err.splitlines()) == 1 and "ambiguous" in err and "d0.png" in err, err
    assert "--modality depth or thermal" in err and not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["embed", "{tmp}/none", "--store", "{tmp}/db", "--model", "{tmp}/m"],
        ["example", "--config", "no_such_config"],
        ["train", "--config", "{tmp}/none.json"],
        ["convert", "{tmp}/a.pth", "{tmp}/b"],
        ["search", "--store", "{tmp}/db", "--model", "{tmp}/m", "--text", "x"],
        ["serve", "--model", "{tmp}/m", "--store", "{tmp}/db", "--port", "0"],
        # the README's `bindkit serve` before any demo run
        ["serve", "--demo-run", "{tmp}/no_demo_yet", "--port", "0"],
        ["eval", "--task", "folder", "--root", "{tmp}", "--model", "{tmp}/m"],
    ],
    ids=lambda a: a[0],
)
def test_each_subcommand_reports_an_expected_error_in_one_line(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert e.value.code == 1 and err.startswith("bindkit: error: ") and len(err.splitlines()) == 1, err
    assert not (tmp_path / "db").exists() and not (tmp_path / "b").exists()  # a refusal creates nothing
